"""Encoder-decoders on torchvision (or, for MobileNet v1, hand-built) encoders.

Two decoders, chosen by ``decoder``:
- ``"deepcolor"`` (DeepColor, paper 002): no skip connections by default. DenseNet-121: 5 blocks of 2x nearest
  upsampling + 3x3 conv + ReLU + BatchNorm, the last block's conv giving chroma through a sigmoid without BN.
  MobileNet: 5 such blocks, then a sixth 3x3 conv with a sigmoid. ``skips=True`` concatenates the encoder feature of
  each scale before the block's conv (the ablation of the paper's claim that skips matter).
- ``"unet"``: this project's U-Net decoder: upsampling + skip concatenation + two conv-BN-ReLU per block.

``resnet18_unet`` (OrGANic; Shariatnia's ResNet-18 U-Net generator for the cGAN) uses the U-Net decoder with a
tanh output as pix2pix generators have.

For input (B, 1, H, W) the encoders return five maps at H/2 .. H/32 (see ``encoders.py``); the decoder goes
H/32 -> H/16 -> H/8 -> H/4 -> H/2 -> H (the U-Net's last block takes the input L as its skip).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig, conv_bn_relu
from colorizer.models.encoders import create_encoder

_UNET_CHANNELS = (256, 128, 64, 32, 16)
_DEEPCOLOR_CHANNELS = (512, 256, 128, 64, 32)  # the paper gives no widths; halving per block is our reading


@dataclass
class EncoderUNetConfig(ModelConfig):
    pretrained: bool = True  # ImageNet encoder from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None  # explicit torchvision weights file
    decoder: str = "unet"  # "unet" (skips, two convs per block) or "deepcolor" (the paper's plain decoder)
    skips: bool = True  # "deepcolor" decoder only: concatenate encoder features (DeepColor's models have none)
    encoder: Optional[str] = None  # override the architecture's encoder (e.g. "mobilenet_v2")


class _UNetBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(in_channels + skip_channels, out_channels),
                                  conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat((x, skip), dim=1))


class _DeepColorBlock(nn.Module):
    """2x nearest upsampling, [skip concatenation], 3x3 conv, then ReLU + BN (or nothing, for the output block)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, output: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1)
        self.post = nn.Identity() if output else nn.Sequential(nn.ReLU(inplace=True), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        return self.post(self.conv(x))


class EncoderUNet(ColorModel):
    size_multiple = 32
    encoder_name = ""
    activation = "sigmoid"
    sixth_conv = False  # DeepColor's MobileNet: a separate output conv after the five blocks

    def __init__(self, config: EncoderUNetConfig):
        super().__init__(config)
        if config.decoder not in ("unet", "deepcolor"):
            raise ValueError(f"decoder must be 'unet' or 'deepcolor', got {config.decoder!r}")
        self.encoder = create_encoder(config.encoder or self.encoder_name, config.pretrained, config.pretrained_path)
        encoder_skips = list(reversed(self.encoder.channels[:-1]))  # H/16 .. H/2
        in_channels = self.encoder.channels[-1]
        self.decoder = nn.ModuleList()
        self.use_skips = config.decoder == "unet" or config.skips
        if config.decoder == "unet":
            for skip, out in zip(encoder_skips + [1], _UNET_CHANNELS):  # the last block's skip is the input L
                self.decoder.append(_UNetBlock(in_channels, skip, out))
                in_channels = out
            self.head = nn.Conv2d(in_channels, self.out_channels, 3, padding=1)
        else:
            skips = (encoder_skips + [1]) if config.skips else [0] * 5
            widths = list(_DEEPCOLOR_CHANNELS)
            if not self.sixth_conv:
                widths[-1] = self.out_channels  # the fifth block is the output block
            for i, (skip, out) in enumerate(zip(skips, widths)):
                self.decoder.append(_DeepColorBlock(in_channels, skip, out, output=i == 4 and not self.sixth_conv))
                in_channels = out
            self.head = nn.Conv2d(in_channels, self.out_channels, 3, padding=1) if self.sixth_conv else nn.Identity()

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        features = self.encoder(lightness)
        x = features[-1]  # (B, C, H/32, W/32)
        skips = list(reversed(features[:-1])) + [lightness]
        for block, skip in zip(self.decoder, skips):
            x = block(x, skip if self.use_skips else None)
        return self.regression_output(self.head(x), self.activation)


class DenseNet121UNet(EncoderUNet):
    encoder_name = "densenet121"


class MobileNetUNet(EncoderUNet):
    encoder_name = "mobilenet_v1"
    sixth_conv = True


class ResNet18UNet(EncoderUNet):
    encoder_name = "resnet18"
    activation = "tanh"
