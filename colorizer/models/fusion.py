"""Encoder-fusion-decoder with a global classification vector (the Manipal paper; Deep Koalarization's fusion).

Encoder: six stride-2 3x3 convs (64, 128, 256, 512, 512, 512 channels; H/64). Global features: a VGG-16
ImageNet classifier run on the L channel (repeated to RGB, resized to ``classifier_size``) gives a 1000-d vector,
tiled over the encoder grid, concatenated and fused by a 1x1 conv (256). Decoder: eight transpose convs, six of
them stride 2, back to H; tanh output. The classifier is frozen (it is a fixed feature extractor in the papers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig
from colorizer.models.encoders import build_backbone

_ENCODER_CHANNELS = (64, 128, 256, 512, 512, 512)
# (out_channels, stride) of the eight decoder transpose convs; the last produces the chroma.
_DECODER = ((256, 1), (256, 2), (128, 2), (128, 2), (64, 2), (64, 2), (32, 2), (None, 1))


@dataclass
class FusionConfig(ModelConfig):
    classifier_size: int = 224  # input side of the VGG-16 classifier (224 in the papers)
    freeze_classifier: bool = True  # the classifier is a fixed feature extractor
    pretrained: bool = True  # ImageNet VGG-16 from a local file when present (else random init, with a warning)
    pretrained_path: Optional[str] = None


class FusionVGG16(ColorModel):
    size_multiple = 64

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        layers, in_channels = [], 1
        for out in _ENCODER_CHANNELS:
            layers += [nn.Conv2d(in_channels, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            in_channels = out
        self.encoder = nn.Sequential(*layers)
        self.classifier = build_backbone("vgg16", config.pretrained, config.pretrained_path)
        if config.freeze_classifier:
            self.classifier.requires_grad_(False)
        self.fuse = nn.Sequential(nn.Conv2d(in_channels + 1000, 256, 1), nn.ReLU(inplace=True))
        layers, in_channels = [], 256
        for out, stride in _DECODER:
            final = out is None
            out = self.out_channels if final else out
            layers.append(nn.ConvTranspose2d(in_channels, out, 3 if stride == 1 else 4, stride, 1))
            if not final:
                layers += [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            in_channels = out
        self.decoder = nn.Sequential(*layers)
        self.register_buffer("imagenet_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("imagenet_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.freeze_classifier:
            self.classifier.eval()  # frozen: keep dropout off
        return self

    def global_features(self, lightness: torch.Tensor) -> torch.Tensor:
        size = self.config.classifier_size
        gray = F.interpolate((lightness + 1) / 2, size=(size, size), mode="bilinear", align_corners=False)
        rgb = (gray.expand(-1, 3, -1, -1) - self.imagenet_mean) / self.imagenet_std
        return self.classifier(rgb)  # (B, 1000)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(lightness)  # (B, 512, H/64, W/64)
        vector = self.global_features(lightness)
        tiled = vector[:, :, None, None].expand(-1, -1, *encoded.shape[-2:])
        x = self.fuse(torch.cat((encoded, tiled), dim=1))
        return self.regression_output(self.decoder(x), "tanh")
