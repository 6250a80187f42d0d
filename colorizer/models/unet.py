"""From-scratch U-Net of DeepColor (Deep Learning for Image Colorization, the "U-Net" baseline).

4 encoder blocks (4x4 stride-2 conv + BN + LeakyReLU(0.01)), 3 decoder blocks (4x4 stride-2 transpose conv, skip
concatenation, BN, dropout 0.5, ReLU) and a final transpose conv with a sigmoid. For input (B, 1, H, W):
encoder features C@H/2, 2C@H/4, 4C@H/8, 8C@H/16; output (B, 2 or Q, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig


@dataclass
class UNetConfig(ModelConfig):
    base_channels: int = 64  # channels of the first encoder block; doubles per block (DeepColor: 64 -> 512)
    dropout: float = 0.5  # decoder dropout (DeepColor)
    skips: bool = True  # skip connections; False is the ablation of DeepColor's finding that they matter most


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(out_channels),
                         nn.LeakyReLU(0.01, inplace=True))


class _Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, skip_channels: int, dropout: float):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False)
        self.post = nn.Sequential(nn.BatchNorm2d(out_channels + skip_channels), nn.Dropout(dropout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        up = self.up(x)
        return self.post(up if skip is None else torch.cat((up, skip), dim=1))


class UNet(ColorModel):
    size_multiple = 16

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        c = config.base_channels
        k = 1 if config.skips else 0  # without skips each block upsamples its input alone
        self.down = nn.ModuleList([_down(1, c), _down(c, 2 * c), _down(2 * c, 4 * c), _down(4 * c, 8 * c)])
        self.up = nn.ModuleList([
            _Up(8 * c, 4 * c, k * 4 * c, config.dropout),  # -> 8C @ H/8 (4C without skips)
            _Up((4 + k * 4) * c, 2 * c, k * 2 * c, config.dropout),  # -> 4C @ H/4
            _Up((2 + k * 2) * c, c, k * c, config.dropout),  # -> 2C @ H/2
        ])
        self.final = nn.ConvTranspose2d((1 + k) * c, self.out_channels, 4, 2, 1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        skips = []
        x = lightness
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(x, skip if self.config.skips else None)
        return self.regression_output(self.final(x), "sigmoid")
