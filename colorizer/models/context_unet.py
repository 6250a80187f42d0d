"""This project's own CPU-sized design: a compact U-Net that predicts chroma at reduced resolution with a global
context branch.

Why: chroma is low-frequency (Zhang et al. 2016 predict it at 1/4 resolution) while colour choice needs the whole
scene (Iizuka et al. 2016 fuse a global feature vector). Input (B, 1, H, W):
stem 32@H/2 -> 64@H/4 -> 128@H/8 -> 256@H/16 (dilated) -> 256@H/32 -> global vector (256);
decoder: H/16 (+ global) -> H/8 -> H/4 (or H/2 with ``output_stride=2``); a 1x1 conv gives chroma or bin logits.
Output (B, 2 or Q, H/output_stride, W/output_stride); the inference code upsamples chroma to full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig, conv_bn_relu


@dataclass
class ContextUNetConfig(ModelConfig):
    head: str = "classify"  # rebalanced classification over ab bins: colourful where regression goes sepia
    width: int = 32  # channels at H/2; doubles per stage up to 8x
    output_stride: int = 4  # chroma at 1/4 (or 1/2) of the input resolution


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def context_encoder(width: int) -> dict[str, nn.Module]:
    """The encoder stages and global MLP (module names as in the state dict): stem 32@H/2 .. stage5 8w@H/32, and the
    MLP over stage5's mean. Manipal's fusion model reuses them, frozen, as its global feature branch."""
    w = width
    return {
        "stem": nn.Sequential(conv_bn_relu(1, w, stride=2), conv_bn_relu(w, w)),  # H/2
        "stage2": nn.Sequential(conv_bn_relu(w, 2 * w, stride=2), conv_bn_relu(2 * w, 2 * w)),  # H/4
        "stage3": nn.Sequential(conv_bn_relu(2 * w, 4 * w, stride=2), conv_bn_relu(4 * w, 4 * w),
                                conv_bn_relu(4 * w, 4 * w)),  # H/8
        "stage4": nn.Sequential(conv_bn_relu(4 * w, 8 * w, stride=2), conv_bn_relu(8 * w, 8 * w, dilation=2),
                                conv_bn_relu(8 * w, 8 * w, dilation=2)),  # H/16
        "stage5": nn.Sequential(conv_bn_relu(8 * w, 8 * w, stride=2), conv_bn_relu(8 * w, 8 * w)),  # H/32
        "global_mlp": nn.Sequential(nn.Linear(8 * w, 8 * w), nn.ReLU(inplace=True), nn.Linear(8 * w, 8 * w)),
    }


class ContextUNet(ColorModel):
    size_multiple = 32

    def __init__(self, config: ContextUNetConfig):
        super().__init__(config)
        if config.output_stride not in (2, 4):
            raise ValueError(f"output_stride must be 2 or 4, got {config.output_stride}")
        self.output_stride = config.output_stride
        w = config.width
        for name, module in context_encoder(w).items():
            setattr(self, name, module)
        self.lateral5 = nn.Conv2d(8 * w, 8 * w, 1)
        self.fuse4 = conv_bn_relu(8 * w, 8 * w)
        self.decode3 = nn.Sequential(conv_bn_relu(8 * w + 4 * w, 4 * w), conv_bn_relu(4 * w, 4 * w))  # H/8
        self.decode2 = nn.Sequential(conv_bn_relu(4 * w + 2 * w, 2 * w), conv_bn_relu(2 * w, 2 * w))  # H/4
        if config.output_stride == 2:
            self.decode1 = nn.Sequential(conv_bn_relu(2 * w + w, w), conv_bn_relu(w, w))  # H/2
        self.head = nn.Conv2d(w if config.output_stride == 2 else 2 * w, self.out_channels, 1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        f1 = self.stem(lightness)  # (B, w, H/2, W/2)
        f2 = self.stage2(f1)  # (B, 2w, H/4, W/4)
        f3 = self.stage3(f2)  # (B, 4w, H/8, W/8)
        f4 = self.stage4(f3)  # (B, 8w, H/16, W/16)
        f5 = self.stage5(f4)  # (B, 8w, H/32, W/32)
        context = self.global_mlp(f5.mean(dim=(2, 3)))[:, :, None, None]  # (B, 8w, 1, 1)
        x = self.fuse4(f4 + _upsample_to(self.lateral5(f5), f4) + context)
        x = self.decode3(torch.cat((_upsample_to(x, f3), f3), dim=1))
        x = self.decode2(torch.cat((_upsample_to(x, f2), f2), dim=1))
        if self.output_stride == 2:
            x = self.decode1(torch.cat((_upsample_to(x, f1), f1), dim=1))
        return self.regression_output(self.head(x), "tanh")
