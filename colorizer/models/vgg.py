"""VGG encoder-decoders.

``vgg19_unet`` (Brown, paper 000): the VGG-19 conv stack as encoder, bottleneck at H/16 (its last block before the
final pool: 14x14 for 224 px, as the paper describes), then one 3x3 transpose-conv block per VGG block with skip
concatenation, conv + BatchNorm + ReLU, and a sigmoid rescaled to the chroma range (the paper's Rescaling layer).
Input (B, 1, H, W) -> encoder 64@H, 128@H/2, 256@H/4, 512@H/8, 512@H/16 -> chroma @H.

``vgg16_regression`` (the UCSD paper, after Hwang & Zhou's and Dahl's regression net): VGG-16 conv1-conv4 on the gray
input repeated to three channels and normalised with the paper's data-set statistics (mean 0.4697, std 0.2610),
upsampling by transpose convs (or bilinear, the paper's ablation) with element-wise-sum skips, BN + ReLU, and a
sigmoid (or ReLU, ablation) output; predicts LUV u, v. Encoder 64@H, 128@H/2, 256@H/4, 512@H/8 -> chroma @H.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig, conv_bn_relu
from colorizer.models.encoders import create_encoder


@dataclass
class VGG19UNetConfig(ModelConfig):
    pretrained: bool = True  # ImageNet VGG-19 from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None  # explicit weights file (torchvision's vgg19-dcbb9e9d.pth)


class _UpBlock(nn.Module):
    """2x transpose conv (3x3), concatenate the skip, conv + BN + ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 3, 2, padding=1, output_padding=1)
        self.fuse = conv_bn_relu(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat((self.up(x), skip), dim=1))


class VGG19UNet(ColorModel):
    size_multiple = 16

    def __init__(self, config: VGG19UNetConfig):
        super().__init__(config)
        # Brown copies L to three channels for VGG-19; summing the first conv's RGB kernels is the same on gray
        self.encoder = create_encoder("vgg19", config.pretrained, config.pretrained_path)
        channels = self.encoder.channels  # (64, 128, 256, 512, 512)
        self.decoder = nn.ModuleList()
        in_channels = channels[-1]
        for skip in reversed(channels[:-1]):  # H/8, H/4, H/2, H
            self.decoder.append(_UpBlock(in_channels, skip, skip))
            in_channels = skip
        self.head = nn.Conv2d(in_channels, self.out_channels, 1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        features = self.encoder(lightness)
        x = features[-1]  # (B, 512, H/16, W/16)
        for block, skip in zip(self.decoder, reversed(features[:-1])):
            x = block(x, skip)
        return self.regression_output(self.head(x), "sigmoid")


@dataclass
class VGG16RegressionConfig(ModelConfig):
    color_space: str = "luv"  # the UCSD paper predicts LUV u, v
    pretrained: bool = True  # ImageNet VGG-16 from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None  # explicit weights file (torchvision's vgg16-397923af.pth)
    gray_mean: float = 0.4697  # the paper's gray statistics (Flickr8k), used to normalise the repeated input
    gray_std: float = 0.2610
    upsample: str = "transpose"  # "transpose" (the paper's best) or "bilinear" (Hwang & Zhou; ablation 2)
    last_activation: str = "sigmoid"  # "sigmoid" (the paper's best) or "relu" (ablation 1)


class VGG16Regression(ColorModel):
    size_multiple = 8

    def __init__(self, config: VGG16RegressionConfig):
        super().__init__(config)
        if config.upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {config.upsample!r}")
        if config.last_activation not in ("sigmoid", "relu"):
            raise ValueError(f"last_activation must be 'sigmoid' or 'relu', got {config.last_activation!r}")
        norm = ((config.gray_mean,) * 3, (config.gray_std,) * 3)
        encoder = create_encoder("vgg16", config.pretrained, config.pretrained_path, repeat_gray=True, gray_norm=norm)
        encoder.stages = encoder.stages[:4]  # conv1_2 .. conv4_3, as Dahl's residual encoder
        self.encoder = encoder
        channels = encoder.channels[:4]  # (64, 128, 256, 512)
        self.skip_norms = nn.ModuleList(nn.BatchNorm2d(c) for c in channels[:3])
        if config.upsample == "transpose":
            self.ups = nn.ModuleList(nn.ConvTranspose2d(channels[i + 1], channels[i], 2, 2) for i in range(3))
        else:  # bilinear 2x, then a 1x1 conv to the skip's width so the element-wise sum is defined
            self.ups = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                                   nn.Conv2d(channels[i + 1], channels[i], 1)) for i in range(3))
        self.post = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True)) for c in channels[:3])
        self.head = nn.Sequential(conv_bn_relu(channels[0], 32), nn.Conv2d(32, self.out_channels, 3, padding=1))

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        features = self.encoder(lightness)
        x = features[-1]  # (B, 512, H/8, W/8)
        for i in (2, 1, 0):
            x = self.post[i](self.ups[i](x) + self.skip_norms[i](features[i]))  # element-wise-sum skip
        out = self.head(x)
        if self.config.last_activation == "relu" and self.config.head == "regress":
            return 2 * F.relu(out) - 1  # ReLU output on the [0, 1] chroma scale, as the paper's ablation
        return self.regression_output(out, "sigmoid")
