"""The cGAN parts of OrGANic (Nazeri et al., "Image Colorization with Generative Adversarial Networks").

``patchgan``: the pix2pix 70x70 PatchGAN discriminator. Input L and chroma, (B, 1 + 2, H, W); output one logit
per overlapping patch, (B, 1, ~H/8 - 2, ~W/8 - 2). Not a colorizer: it judges (L, chroma) pairs.
``resnet_generator``: the small residual generator (pix2pix / Johnson et al.): 7x7 stem, two stride-2 convs,
residual blocks at H/4, two transpose convs, 7x7 output conv and tanh.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig


@dataclass
class PatchGANConfig:
    base_channels: int = 64  # C64-C128-C256-C512 as pix2pix
    layers: int = 3  # stride-2 layers after the first; 3 gives the 70x70 receptive field
    in_channels: int = 3  # L + two chroma channels

    def to_dict(self) -> dict:
        return asdict(self)


class PatchGAN(nn.Module):
    kind = "discriminator"

    def __init__(self, config: PatchGANConfig):
        super().__init__()
        self.config = config
        c = config.base_channels
        layers = [nn.Conv2d(config.in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = c
        for i in range(1, config.layers + 1):
            out = c * min(2 ** i, 8)
            stride = 2 if i < config.layers else 1
            layers += [nn.Conv2d(channels, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, lightness: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((lightness, chroma), dim=1))


@dataclass
class ResNetGeneratorConfig(ModelConfig):
    base_channels: int = 32  # stem width; 2x and 4x after the two downsamplings
    blocks: int = 6  # residual blocks at H/4


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(ColorModel):
    size_multiple = 4

    def __init__(self, config: ResNetGeneratorConfig):
        super().__init__(config)
        c = config.base_channels
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(1, c, 7, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(c * mult, c * mult * 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c * mult * 2),
                       nn.ReLU(inplace=True)]
        layers += [_ResidualBlock(4 * c) for _ in range(config.blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(c * mult, c * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c * mult // 2), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, self.out_channels, 7)]
        self.net = nn.Sequential(*layers)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.regression_output(self.net(lightness), "tanh")
