"""VGG encoder-decoders.

``vgg19_unet`` (Brown, colourisation with a Gaussian-blur perceptual loss): VGG-19 encoder, one transpose-conv
decoder block per VGG block with skip concatenation and BatchNorm; tanh output on the shared ab scale.
Input (B, 1, H, W) -> encoder 64@H, 128@H/2, 256@H/4, 512@H/8, 512@H/16 -> bottleneck 512@H/32 -> chroma @H.

``vgg16_regression`` (Hwang & Zhou's / Dahl's residual regression net, the UCSD paper): VGG-16 conv1-conv4,
transpose-conv upsampling with element-wise-sum skips, BN + ReLU, sigmoid output; predicts LUV u, v; the
normalised L is repeated to 3 channels as in the paper. Encoder 64@H, 128@H/2, 256@H/4, 512@H/8 -> chroma @H.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig, conv_bn_relu
from colorizer.models.encoders import create_encoder


@dataclass
class VGG19UNetConfig(ModelConfig):
    pretrained: bool = True  # ImageNet VGG-19 from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None  # explicit weights file (torchvision's vgg19-dcbb9e9d.pth)


class _UpBlock(nn.Module):
    """2x transpose conv, concatenate the skip, conv + BN + ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, 2)
        self.fuse = conv_bn_relu(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat((self.up(x), skip), dim=1))


class VGG19UNet(ColorModel):
    size_multiple = 32

    def __init__(self, config: VGG19UNetConfig):
        super().__init__(config)
        self.encoder = create_encoder("vgg19", config.pretrained, config.pretrained_path)
        self.pool = nn.MaxPool2d(2)
        channels = self.encoder.channels  # (64, 128, 256, 512, 512)
        self.decoder = nn.ModuleList()
        in_channels = channels[-1]
        for skip in reversed(channels):
            out = max(skip // 2, 32) if skip != channels[-1] else skip
            self.decoder.append(_UpBlock(in_channels, skip, out))
            in_channels = out
        self.head = nn.Conv2d(in_channels, self.out_channels, 1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        features = self.encoder(lightness)
        x = self.pool(features[-1])  # (B, 512, H/32, W/32)
        for block, skip in zip(self.decoder, reversed(features)):
            x = block(x, skip)
        return self.regression_output(self.head(x), "tanh")


@dataclass
class VGG16RegressionConfig(ModelConfig):
    color_space: str = "luv"  # the UCSD paper predicts LUV u, v
    pretrained: bool = True  # ImageNet VGG-16 from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None  # explicit weights file (torchvision's vgg16-397923af.pth)


class VGG16Regression(ColorModel):
    size_multiple = 8

    def __init__(self, config: VGG16RegressionConfig):
        super().__init__(config)
        encoder = create_encoder("vgg16", config.pretrained, config.pretrained_path, repeat_gray=True)
        encoder.stages = encoder.stages[:4]  # conv1_2 .. conv4_3, as Dahl's residual encoder
        self.encoder = encoder
        channels = encoder.channels[:4]  # (64, 128, 256, 512)
        self.skip_norms = nn.ModuleList(nn.BatchNorm2d(c) for c in channels[:3])
        self.ups = nn.ModuleList(nn.ConvTranspose2d(channels[i + 1], channels[i], 2, 2) for i in range(3))
        self.post = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True)) for c in channels[:3])
        self.head = nn.Sequential(conv_bn_relu(channels[0], 32), nn.Conv2d(32, self.out_channels, 3, padding=1))

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        features = self.encoder(lightness)
        x = features[-1]  # (B, 512, H/8, W/8)
        for i in (2, 1, 0):
            x = self.post[i](self.ups[i](x) + self.skip_norms[i](features[i]))  # element-wise-sum skip
        return self.regression_output(self.head(x), "sigmoid")
