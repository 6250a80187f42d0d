"""Each loss on tiny tensors with values worked out by hand."""

import math

import pytest
import torch

from colorizer import losses
from colorizer.bins import AbBins


def test_mse_and_huber_known_values():
    pred, target = torch.tensor([[[[0.0, 2.0]]]]), torch.tensor([[[[0.0, 0.0]]]])
    assert losses.mse(pred, target).item() == pytest.approx(2.0)  # (0 + 4) / 2
    assert losses.huber(pred, target).item() == pytest.approx(0.75)  # (0 + (2 - 0.5)) / 2
    small = torch.tensor([[[[0.5]]]])
    assert losses.huber(small, torch.zeros_like(small)).item() == pytest.approx(0.125)  # 0.5 * 0.5^2


def test_blur_loss_of_constant_error_is_that_error():
    # a constant offset survives any normalised blur unchanged, so all three RMSE terms equal the offset
    target = torch.rand(2, 2, 9, 11)
    assert losses.blur(target + 0.3, target).item() == pytest.approx(0.3, abs=1e-4)
    assert losses.blur(target, target).item() == pytest.approx(0.0, abs=1e-3)


def test_blur_loss_forgives_high_frequency_error_more_than_mse():
    target = torch.zeros(1, 1, 16, 16)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2 - 1.0  # +-1 checkerboard
    pred = checker[None, None] * 0.1
    rmse = math.sqrt(losses.mse(pred, target).item())
    assert losses.blur(pred, target).item() < rmse  # the blurred terms remove most of a checkerboard


def test_gaussian_kernel_is_normalised():
    for size in (3, 5):
        kernel = losses.gaussian_kernel(size, torch.zeros(1))
        assert kernel.sum().item() == pytest.approx(1.0)
        assert kernel.argmax().item() == size * size // 2


def test_classify_loss_prefers_the_right_bin():
    bins = AbBins()
    target = bins.centers[17].view(1, 2, 1, 1).expand(1, 2, 2, 2).clone()
    logits_right = torch.full((1, bins.count, 2, 2), -10.0)
    logits_right[:, 17] = 10.0
    logits_wrong = torch.full((1, bins.count, 2, 2), -10.0)
    logits_wrong[:, 100] = 10.0
    right = losses.classify(logits_right, target, bins, rebalance=False).item()
    wrong = losses.classify(logits_wrong, target, bins, rebalance=False).item()
    # soft targets spread mass over 5 bins, so even the right answer costs something, but far less
    assert wrong > 15 and right < wrong / 3


def test_classify_uniform_logits_cost_log_q():
    bins = AbBins()
    target = torch.zeros(1, 2, 3, 3)
    logits = torch.zeros(1, bins.count, 3, 3)
    assert losses.classify(logits, target, bins, rebalance=False).item() == pytest.approx(math.log(bins.count), rel=1e-5)


def test_rebalancing_upweights_rare_bins():
    bins = AbBins()
    histogram = torch.ones(bins.count)
    histogram[0] = 1000.0  # one very common colour
    bins.set_rebalancing(histogram)
    assert bins.class_weights[0] < bins.class_weights[bins.count // 2]


def test_annealed_mean_temperature():
    bins = AbBins()
    logits = torch.zeros(1, bins.count, 1, 1)
    logits[0, 5] = 3.0
    cold = bins.annealed_mean(logits, 0.05)
    torch.testing.assert_close(cold[0, :, 0, 0], bins.centers[5], atol=1e-4, rtol=0)
    warm = bins.annealed_mean(logits, 1.0)
    assert (warm[0, :, 0, 0] - bins.centers[5]).norm() > 0.05
    with pytest.raises(ValueError):
        bins.annealed_mean(logits, 0.0)


def test_gan_losses_known_values():
    zeros = torch.zeros(1, 1, 2, 2)
    assert losses.gan_discriminator(zeros, zeros).item() == pytest.approx(math.log(2))
    pred, target = torch.full((1, 2, 2, 2), 0.5), torch.zeros(1, 2, 2, 2)
    assert losses.gan_generator(zeros, pred, target, l1_weight=10).item() == pytest.approx(math.log(2) + 5.0)


def test_chroma_target_pools_to_head_size():
    chroma = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 2, 4, 4)
    pooled = losses.chroma_target(chroma, (2, 2))
    assert pooled[0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]


def test_decode_undoes_rebalancing_and_scales_chroma():
    bins = AbBins()
    torch.manual_seed(0)
    bins.set_rebalancing(torch.rand(bins.count) ** 4)
    logits = torch.randn(1, bins.count, 3, 4)
    assert torch.equal(bins.decode(logits, 0.38), bins.annealed_mean(logits, 0.38))
    undone = bins.annealed_mean(logits - torch.log(bins.class_weights)[:, None, None], 0.38)
    assert torch.allclose(bins.decode(logits, 0.38, undo_rebalancing=1.0), undone, atol=1e-6)
    assert not torch.allclose(undone, bins.annealed_mean(logits, 0.38), atol=1e-3)
    assert torch.allclose(bins.decode(logits, 0.38, 0.5, gain=1.5), 1.5 * bins.decode(logits, 0.38, 0.5), atol=1e-6)
