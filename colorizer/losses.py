"""Losses of the source papers, as pure functions of tensors.

Regression losses take predicted and true normalised chroma (B, 2, H, W). ``classify`` takes bin logits and the
true chroma; ``gan`` losses take discriminator logits. ``chroma_target`` pools the ground truth to the resolution of
a reduced-resolution head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorizer.bins import AbBins

LOSSES = ("mse", "huber", "blur", "classify", "gan")


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)


def huber(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """SmoothL1 (the UCSD paper's Huber loss): quadratic below ``beta``, linear above."""
    return F.smooth_l1_loss(pred, target, beta=beta)


def gaussian_kernel(size: int, like: torch.Tensor) -> torch.Tensor:
    """Normalised 2-D Gaussian (size x size); sigma from OpenCV's rule 0.3 * ((size - 1) / 2 - 1) + 0.8."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    coords = torch.arange(size, device=like.device, dtype=like.dtype) - (size - 1) / 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def gaussian_blur(image: torch.Tensor, size: int) -> torch.Tensor:
    """Blurs each channel of (B, C, H, W) with a size x size Gaussian (reflect padding keeps the size)."""
    channels = image.shape[1]
    kernel = gaussian_kernel(size, image).expand(channels, 1, size, size)
    padded = F.pad(image, [size // 2] * 4, mode="reflect" if min(image.shape[-2:]) > size // 2 else "replicate")
    return F.conv2d(padded, kernel, groups=channels)


def per_pixel_distance(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over pixels of the per-pixel Euclidean distance over the chroma channels.

    Brown's code computes Keras ``mse`` (a mean over the last, channel axis: one value per pixel), takes ``** 0.5``
    per pixel and lets Keras average: sqrt(mean_c (p - t)^2) per pixel, then the mean. ``eps`` keeps the gradient
    finite where a pixel is exact."""
    return torch.sqrt(((pred - target) ** 2).mean(dim=1) + eps).mean()


def blur(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Brown's perceptual loss (Eq. 3): the mean of the per-pixel distance at full sharpness and after 3x3 and 5x5
    Gaussian blurs."""
    terms = [per_pixel_distance(pred, target, eps)]
    for size in (3, 5):
        terms.append(per_pixel_distance(gaussian_blur(pred, size), gaussian_blur(target, size), eps))
    return sum(terms) / 3


def classify(logits: torch.Tensor, target: torch.Tensor, bins: AbBins, rebalance: bool = True) -> torch.Tensor:
    """Zhang et al. (2016) multinomial cross-entropy with soft-encoded targets and class rebalancing (Eq. 2)."""
    indices, weights = bins.soft_encode(target)  # (B, k, H, W) each
    log_probabilities = F.log_softmax(logits.float(), dim=1)
    per_pixel = -(log_probabilities.gather(1, indices) * weights).sum(dim=1)  # (B, H, W)
    if rebalance:
        per_pixel = per_pixel * bins.class_weights[indices[:, 0]]  # weight of the nearest bin
    return per_pixel.mean()


def chroma_target(chroma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """True chroma (B, 2, H, W) averaged down to a head's output size (identity if already that size)."""
    if tuple(chroma.shape[-2:]) == tuple(size):
        return chroma
    return F.adaptive_avg_pool2d(chroma, size)


def gan_discriminator(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """BCE of the discriminator (real -> ``real_label``, fake -> 0), halved as pix2pix does.

    ``real_label`` 0.9 is the one-sided label smoothing of Nazeri et al."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def gan_generator(fake_logits: torch.Tensor, pred: torch.Tensor, target: torch.Tensor,
                  l1_weight: float = 100.0) -> torch.Tensor:
    """Adversarial BCE (fake -> 1) plus ``l1_weight`` * L1 to the true chroma (OrGANic / pix2pix, lambda = 100)."""
    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return adversarial + l1_weight * F.l1_loss(pred, target)


def regression_loss(name: str):
    """The regression loss function called ``name``."""
    functions = {"mse": mse, "huber": huber, "blur": blur}
    if name not in functions:
        raise KeyError(f"{name!r} is not a regression loss; expected one of {sorted(functions)}")
    return functions[name]
