"""torchvision backbones as multi-scale encoders taking one-channel L.

Each encoder maps ``(B, 1, H, W)`` (H, W multiples of 32) to a list of feature maps, finest first:

| encoder      | returned features (channels @ resolution)                          |
|--------------|--------------------------------------------------------------------|
| vgg19        | 64@H, 128@H/2, 256@H/4, 512@H/8, 512@H/16 (each VGG block before its pool) |
| vgg16        | 64@H, 128@H/2, 256@H/4, 512@H/8, 512@H/16                           |
| densenet121  | 64@H/2, 256@H/4, 512@H/8, 1024@H/16, 1024@H/32                      |
| mobilenet_v2 | 16@H/2, 24@H/4, 32@H/8, 96@H/16, 1280@H/32                          |
| resnet18     | 64@H/2, 64@H/4, 128@H/8, 256@H/16, 512@H/32                         |
| resnet34     | 64@H/2, 64@H/4, 128@H/8, 256@H/16, 512@H/32                         |
| mobilenet_v1 | 64@H/2, 128@H/4, 256@H/8, 512@H/16, 1024@H/32 (built here; torchvision has no v1) |

ImageNet weights come from local files only (``colorizer.models.pretrained``); the first conv is adapted to one
channel by summing its RGB kernels unless ``repeat_gray`` asks for the paper's L-repeated-to-RGB input. When the
ImageNet weights were loaded, the encoder sees the input normalisation it was trained with: folded into the
one-channel conv, or applied to the repeated gray.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

from colorizer.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_imagenet_weights, single_channel_conv

log = logging.getLogger(__name__)

ENCODER_CHANNELS = {
    "vgg19": (64, 128, 256, 512, 512),
    "vgg16": (64, 128, 256, 512, 512),
    "densenet121": (64, 256, 512, 1024, 1024),
    "mobilenet_v2": (16, 24, 32, 96, 1280),
    "resnet18": (64, 64, 128, 256, 512),
    "resnet34": (64, 64, 128, 256, 512),
    "mobilenet_v1": (64, 128, 256, 512, 1024),
}

@functools.lru_cache(maxsize=None)
def _weights() -> dict:
    import torchvision  # imported on first use: inference with this project's own models never needs it

    return {
        "vgg19": torchvision.models.VGG19_Weights.IMAGENET1K_V1,
        "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1,
        "densenet121": torchvision.models.DenseNet121_Weights.IMAGENET1K_V1,
        "mobilenet_v2": torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1,
        "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
        "resnet34": torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
    }


def build_backbone(name: str, pretrained: bool, pretrained_path: str | None = None) -> nn.Module:
    """The full torchvision model (random init), with ImageNet weights loaded from disk if asked and present."""
    import torchvision

    if name not in ENCODER_CHANNELS or name == "mobilenet_v1":
        raise KeyError(f"unknown encoder {name!r}; expected one of {sorted(ENCODER_CHANNELS)}")
    model = getattr(torchvision.models, name)(weights=None)
    # recorded so training gives a random-init encoder the full learning rate, not the fine-tuning one
    model.imagenet_loaded = bool(pretrained) and load_imagenet_weights(model, _weights()[name], pretrained_path)
    return model


class Encoder(nn.Module):
    """Runs ``stages`` in order and returns every stage's output.

    ``repeat_gray``: normalised L is repeated to three channels; with ``gray_norm`` = (means, stds) the gray
    g = (L + 1) / 2 is normalised per channel first (ImageNet's statistics, or a paper's own)."""

    def __init__(self, name: str, stages: list[nn.Module], repeat_gray: bool, imagenet_loaded: bool = False,
                 gray_norm: tuple | None = None):
        super().__init__()
        self.name = name
        self.imagenet_loaded = imagenet_loaded
        self.channels = ENCODER_CHANNELS[name]
        self.stages = nn.ModuleList(stages)
        self.repeat_gray = repeat_gray
        self.gray_norm = gray_norm  # plain floats, not buffers: files stay loadable whatever the statistics

    def _input(self, lightness: torch.Tensor) -> torch.Tensor:
        if not self.repeat_gray:
            return lightness
        x = lightness.expand(-1, 3, -1, -1)
        if self.gray_norm is None:
            return x
        mean = torch.tensor(self.gray_norm[0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.gray_norm[1], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return ((x + 1) / 2 - mean) / std

    def forward(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        x = self._input(lightness)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def _vgg_stages(features: nn.Sequential) -> list[nn.Module]:
    # Split torchvision's VGG feature stack at its max-pools; each stage starts with the previous pool.
    stages, current = [], []
    for layer in features:
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            current = [layer]
        else:
            current.append(layer)
    return stages  # the last pool is dropped: the decoder upsamples from the H/16 features


def _depthwise_separable(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


def mobilenet_v1_stages(in_channels: int = 1) -> list[nn.Module]:
    """MobileNet v1 (Howard et al. 2017, width 1.0) as five stages ending at H/2 .. H/32."""
    stem = nn.Sequential(nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                         _depthwise_separable(32, 64, 1))  # 64@H/2
    return [
        stem,
        nn.Sequential(_depthwise_separable(64, 128, 2), _depthwise_separable(128, 128, 1)),  # 128@H/4
        nn.Sequential(_depthwise_separable(128, 256, 2), _depthwise_separable(256, 256, 1)),  # 256@H/8
        nn.Sequential(_depthwise_separable(256, 512, 2), *[_depthwise_separable(512, 512, 1) for _ in range(5)]),
        nn.Sequential(_depthwise_separable(512, 1024, 2), _depthwise_separable(1024, 1024, 1)),  # 1024@H/32
    ]


def create_encoder(name: str, pretrained: bool = True, pretrained_path: str | None = None,
                   repeat_gray: bool = False, gray_norm: tuple | None = None) -> Encoder:
    """``gray_norm`` (means, stds) normalises a repeated gray input; by default ImageNet's when its weights loaded."""
    if name == "mobilenet_v1":
        if pretrained:
            log.warning("no ImageNet weights exist for MobileNet v1 in torchvision's format; it starts from random init")
        return Encoder(name, mobilenet_v1_stages(3 if repeat_gray else 1), repeat_gray, False, gray_norm)
    backbone = build_backbone(name, pretrained, pretrained_path)
    loaded = backbone.imagenet_loaded
    if repeat_gray and gray_norm is None and loaded:
        gray_norm = (IMAGENET_MEAN, IMAGENET_STD)

    def one_channel(conv: nn.Conv2d) -> nn.Conv2d:
        return single_channel_conv(conv, imagenet_input=loaded)

    if name.startswith("vgg"):
        if not repeat_gray:
            backbone.features[0] = one_channel(backbone.features[0])
        stages = _vgg_stages(backbone.features)
    elif name == "densenet121":
        f = backbone.features
        if not repeat_gray:
            f.conv0 = one_channel(f.conv0)
        stages = [
            nn.Sequential(f.conv0, f.norm0, f.relu0),
            nn.Sequential(f.pool0, f.denseblock1),
            nn.Sequential(f.transition1, f.denseblock2),
            nn.Sequential(f.transition2, f.denseblock3),
            nn.Sequential(f.transition3, f.denseblock4, f.norm5, nn.ReLU(inplace=False)),
        ]
    elif name == "mobilenet_v2":
        f = backbone.features
        if not repeat_gray:
            f[0][0] = one_channel(f[0][0])
        stages = [f[0:2], f[2:4], f[4:7], f[7:14], f[14:19]]
    else:  # resnet18 / resnet34
        b = backbone
        if not repeat_gray:
            b.conv1 = one_channel(b.conv1)
        stages = [
            nn.Sequential(b.conv1, b.bn1, b.relu),
            nn.Sequential(b.maxpool, b.layer1),
            b.layer2,
            b.layer3,
            b.layer4,
        ]
    return Encoder(name, stages, repeat_gray, loaded, gray_norm)
