"""Model registry: ``create(name, **config)`` and ``list_models()``.

Every colorizer takes normalised L ``(B, 1, H, W)`` and returns chroma (or ab-bin logits); see ``base.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from torch import nn

from colorizer.models.base import ColorModel, ModelConfig
from colorizer.models.context_unet import ContextUNet, ContextUNetConfig
from colorizer.models.encoder_unet import DenseNet121UNet, EncoderUNetConfig, MobileNetUNet, ResNet18UNet
from colorizer.models.lite_unet import LiteUNet, LiteUNetConfig
from colorizer.models.fusion import FusionConfig, FusionVGG16
from colorizer.models.gan import (NazeriUNet, NazeriUNetConfig, OrganicDiscriminator, OrganicDiscriminatorConfig,
                                  OrganicResidual, OrganicResidualConfig, PatchGAN, PatchGANConfig, ResNetGenerator,
                                  ResNetGeneratorConfig)
from colorizer.models.unet import UNet, UNetConfig
from colorizer.models.vgg import VGG16Regression, VGG16RegressionConfig, VGG19UNet, VGG19UNetConfig


@dataclass(frozen=True)
class ModelEntry:
    builder: Callable[..., nn.Module]
    config_class: type
    kind: str  # "colorizer" (L -> chroma) or "discriminator" (L, chroma -> patch logits)
    source: str  # the paper the architecture follows


_REGISTRY: dict[str, ModelEntry] = {
    "context_unet": ModelEntry(ContextUNet, ContextUNetConfig, "colorizer",
                               "this project: compact U-Net, chroma at 1/4 resolution, global context"),
    "lite_unet": ModelEntry(LiteUNet, LiteUNetConfig, "colorizer",
                            "this project: ImageNet EfficientNet-Lite encoder, U-Net decoder, global branch"),
    "unet": ModelEntry(UNet, UNetConfig, "colorizer", "DeepColor from-scratch U-Net"),
    "vgg19_unet": ModelEntry(VGG19UNet, VGG19UNetConfig, "colorizer", "Brown: VGG-19 U-Net, bottleneck at H/16"),
    "vgg16_regression": ModelEntry(VGG16Regression, VGG16RegressionConfig, "colorizer",
                                   "UCSD paper (Hwang & Zhou / Dahl): VGG-16 regression in LUV"),
    "fusion_vgg16": ModelEntry(FusionVGG16, FusionConfig, "colorizer",
                               "Manipal paper / Deep Koalarization: encoder + VGG-16 class-vector fusion"),
    "densenet121_unet": ModelEntry(DenseNet121UNet, EncoderUNetConfig, "colorizer",
                                   "DeepColor: DenseNet-121 encoder, plain or U-Net decoder"),
    "mobilenet_unet": ModelEntry(MobileNetUNet, EncoderUNetConfig, "colorizer",
                                 "DeepColor: MobileNet v1 encoder, plain or U-Net decoder"),
    "nazeri_unet": ModelEntry(NazeriUNet, NazeriUNetConfig, "colorizer",
                              "OrGANic / Nazeri et al.: the cGAN's U-Net generator"),
    "resnet18_unet": ModelEntry(ResNet18UNet, EncoderUNetConfig, "colorizer",
                                "OrGANic / Shariatnia: ResNet-18 U-Net generator"),
    "resnet_generator": ModelEntry(ResNetGenerator, ResNetGeneratorConfig, "colorizer",
                                   "OrGANic / pix2pix: small residual generator"),
    "organic_residual": ModelEntry(OrganicResidual, OrganicResidualConfig, "colorizer",
                                   "OrGANic: its own residual generator, no down- or upsampling"),
    "patchgan": ModelEntry(PatchGAN, PatchGANConfig, "discriminator", "pix2pix / OrGANic 70x70 PatchGAN"),
    "organic_discriminator": ModelEntry(OrganicDiscriminator, OrganicDiscriminatorConfig, "discriminator",
                                        "OrGANic: its own sequential classifier discriminator"),
}


def list_models(kind: str | None = "colorizer") -> list[str]:
    """Registered architecture names (colorizers by default; ``kind=None`` lists every entry)."""
    return sorted(name for name, entry in _REGISTRY.items() if kind is None or entry.kind == kind)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(list_models(None))}") from None


def make_config(name: str, **config):
    """The config dataclass of ``name`` with ``config`` overrides; unknown fields raise ``TypeError``."""
    config_class = get_entry(name).config_class
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(config) - known
    if unknown:
        raise TypeError(f"unknown config field(s) {sorted(unknown)} for model {name!r}; known: {sorted(known)}")
    return config_class(**config)


def create(name: str, **config) -> nn.Module:
    """Builds architecture ``name`` with its config dataclass's defaults overridden by ``config``."""
    model = get_entry(name).builder(make_config(name, **config))
    model.architecture = name
    return model


__all__ = ["ColorModel", "ModelConfig", "create", "list_models", "get_entry", "make_config"]
