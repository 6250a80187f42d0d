"""U-Nets on torchvision encoders.

``densenet121_unet`` and ``mobilenet_unet`` (DeepColor): a pretrained-style encoder and 5 decoder blocks of 2x
upsampling + skip concatenation + conv-BN-ReLU, then a 3x3 conv and a sigmoid.
``resnet18_unet`` (OrGANic; Shariatnia's ResNet-18 U-Net generator for the cGAN): the same decoder on ResNet-18,
tanh output as pix2pix generators have.

For input (B, 1, H, W) the encoders return five maps at H/2 .. H/32 (see ``encoders.py``); the decoder goes
H/32 -> H/16 -> H/8 -> H/4 -> H/2 -> H, the last block taking the input L as its skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig, conv_bn_relu
from colorizer.models.encoders import create_encoder

_DECODER_CHANNELS = (256, 128, 64, 32, 16)


@dataclass
class EncoderUNetConfig(ModelConfig):
    pretrained: bool = True  # ImageNet encoder from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None  # explicit torchvision weights file


class _DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(in_channels + skip_channels, out_channels),
                                  conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat((x, skip), dim=1))


class EncoderUNet(ColorModel):
    size_multiple = 32
    encoder_name = ""
    activation = "sigmoid"

    def __init__(self, config: EncoderUNetConfig):
        super().__init__(config)
        self.encoder = create_encoder(self.encoder_name, config.pretrained, config.pretrained_path)
        skips = list(reversed(self.encoder.channels[:-1])) + [1]  # the last block's skip is the input L
        in_channels = self.encoder.channels[-1]
        self.decoder = nn.ModuleList()
        for skip, out in zip(skips, _DECODER_CHANNELS):
            self.decoder.append(_DecoderBlock(in_channels, skip, out))
            in_channels = out
        self.head = nn.Conv2d(in_channels, self.out_channels, 3, padding=1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        features = self.encoder(lightness)
        x = features[-1]
        for block, skip in zip(self.decoder, list(reversed(features[:-1])) + [lightness]):
            x = block(x, skip)
        return self.regression_output(self.head(x), self.activation)


class DenseNet121UNet(EncoderUNet):
    encoder_name = "densenet121"


class MobileNetUNet(EncoderUNet):
    encoder_name = "mobilenet_v2"


class ResNet18UNet(EncoderUNet):
    encoder_name = "resnet18"
    activation = "tanh"
