"""Every registry model: forward and backward at two odd sizes, no NaNs, a gradient for every trainable parameter."""

import logging

import pytest
import torch

from colorizer import models

SMALL = {  # shrink the heaviest configs so the suite stays fast; structure is unchanged
    "fusion_vgg16": {"classifier_size": 32},
}
SIZES = [(37, 53), (70, 45)]


def build(name, **config):
    config = {**SMALL.get(name, {}), **config}
    if "pretrained" in {f for f in models.get_entry(name).config_class.__dataclass_fields__}:
        config.setdefault("pretrained", False)
    torch.manual_seed(0)
    return models.create(name, **config)


@pytest.mark.parametrize("name", models.list_models())
def test_forward_backward_any_size(name):
    model = build(name, head="regress").train()
    for height, width in SIZES:
        lightness = torch.rand(2, 1, height, width) * 2 - 1
        out = model(lightness)
        stride = model.output_stride
        assert out.shape == (2, 2, -(-height // stride), -(-width // stride))
        assert torch.isfinite(out).all()
        assert out.abs().max() <= 1  # every regression head ends on the shared [-1, 1] chroma scale
        model.zero_grad()
        out.square().mean().backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
        assert not missing, f"no finite gradient for {missing[:5]}"


@pytest.mark.parametrize("name", ["context_unet", "unet", "resnet_generator"])
def test_classification_head(name):
    model = build(name, head="classify").eval()
    lightness = torch.rand(1, 1, 33, 41) * 2 - 1
    logits = model(lightness)
    assert logits.shape[1] == model.bins.count
    chroma = model.predict_chroma(lightness, temperature=0.5)
    assert chroma.shape[1] == 2 and torch.isfinite(chroma).all()


def test_patchgan_discriminator():
    discriminator = models.create("patchgan")
    logits = discriminator(torch.rand(2, 1, 70, 70), torch.rand(2, 2, 70, 70))
    assert logits.shape[:2] == (2, 1) and logits.shape[-1] >= 6
    logits.mean().backward()
    assert all(p.grad is not None for p in discriminator.parameters())


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match="valid names: .*context_unet"):
        models.create("no_such_net")


def test_unknown_config_field_is_refused():
    with pytest.raises(TypeError, match="unknown config field"):
        models.create("unet", widht=3)


def test_missing_imagenet_weights_warn_once_and_fall_back(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.delenv("COLORIZER_PRETRAINED_DIR", raising=False)
    from colorizer.models import pretrained

    pretrained._warned.discard("resnet18-f37072fd.pth")
    with caplog.at_level(logging.WARNING):
        models.create("resnet18_unet")
        models.create("resnet18_unet")
    warnings = [r for r in caplog.records if "resnet18" in r.getMessage()]
    assert len(warnings) == 1 and "random init" in warnings[0].getMessage()


def test_local_imagenet_weights_are_loaded_and_adapted(tmp_path, monkeypatch):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    monkeypatch.setenv("COLORIZER_PRETRAINED_DIR", str(tmp_path))
    model = models.create("resnet18_unet")
    first = model.encoder.stages[0][0]
    assert first.in_channels == 1
    # with ImageNet weights loaded, the ImageNet input normalisation of gray (L + 1) / 2 is folded in
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(first.weight, (reference.conv1.weight / (2 * std)).sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.encoder.stages[4][0].conv1.weight, reference.layer4[0].conv1.weight)


def test_explicit_missing_pretrained_file_raises():
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        models.create("densenet121_unet", pretrained_path="/nowhere.pth")


def test_summed_first_conv_equals_rgb_conv_on_gray():
    from colorizer.models.pretrained import single_channel_conv

    torch.manual_seed(0)
    rgb_conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    gray = torch.rand(1, 1, 9, 9)
    torch.testing.assert_close(single_channel_conv(rgb_conv)(gray), rgb_conv(gray.expand(-1, 3, -1, -1)))
