"""ImageNet weights for torchvision encoders, loaded only from local files: never from the network.

Search order for a torchvision weights file (e.g. ``vgg19-dcbb9e9d.pth``):
1. an explicit path given in the model config (``pretrained_path``);
2. the folder named by the ``COLORIZER_PRETRAINED_DIR`` environment variable;
3. torch hub's cache, ``$TORCH_HOME/hub/checkpoints`` (where ``torchvision`` would have saved it).
If none exists the encoder keeps its random initialisation and one warning per file says so.
Files are read with ``torch.load(weights_only=True)``: tensors only, no unpickling of code.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)
_warned: set[str] = set()


def candidate_paths(filename: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    paths = []
    if explicit:
        paths.append(Path(explicit))
    if os.environ.get("COLORIZER_PRETRAINED_DIR"):
        paths.append(Path(os.environ["COLORIZER_PRETRAINED_DIR"]) / filename)
    paths.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    return paths


def _remap_densenet_keys(state: dict) -> dict:
    # Old torchvision DenseNet checkpoints name layers "norm.1"; the module now calls them "norm1".
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    remapped = {}
    for key, value in state.items():
        match = pattern.match(key)
        remapped[match.group(1) + match.group(2) if match else key] = value
    return remapped


def load_imagenet_weights(model: nn.Module, weights_enum, explicit_path: str | None = None) -> bool:
    """Loads ``weights_enum``'s file into ``model`` from local disk if present; returns whether it did."""
    filename = os.path.basename(weights_enum.url)
    for path in candidate_paths(filename, explicit_path):
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(_remap_densenet_keys(state), strict=True)
            log.info("loaded ImageNet weights from %s", path)
            return True
    if explicit_path:
        raise FileNotFoundError(f"pretrained weights file not found: {explicit_path!r}")
    if filename not in _warned:
        _warned.add(filename)
        log.warning(
            "ImageNet weights %s not found locally (looked in %s); the encoder starts from random init. "
            "Put the file in one of those places to use them.",
            filename, ", ".join(str(p.parent) for p in candidate_paths(filename)),
        )
    return False


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def single_channel_conv(conv: nn.Conv2d, imagenet_input: bool = False) -> nn.Conv2d:
    """A copy of an RGB first conv that takes one channel (always with a bias, so every file has the same keys).

    Plain: the kernel is the sum over the RGB kernels, so a gray input (R = G = B) gives exactly the RGB conv's
    response. ``imagenet_input``: the conv takes normalised L in [-1, 1] and computes what the ImageNet-trained conv
    computes on its own input normalisation of gray g = (L + 1) / 2 repeated to RGB, ((g - mean_c) / std_c):
    sum_c W_c ((x + 1) / 2 - m_c) / s_c = x * sum_c W_c / (2 s_c) + sum_c W_c (1/2 - m_c) / s_c, folded into the
    weight and bias (exact away from the zero-padded border).
    """
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, True, conv.padding_mode)
    with torch.no_grad():
        weight = conv.weight  # (O, 3, k, k)
        bias = conv.bias.clone() if conv.bias is not None else torch.zeros(conv.out_channels)
        if imagenet_input:
            mean = torch.tensor(IMAGENET_MEAN, dtype=weight.dtype).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, dtype=weight.dtype).view(1, 3, 1, 1)
            new.weight.copy_((weight / (2 * std)).sum(dim=1, keepdim=True))
            bias += (weight * (0.5 - mean) / std).sum(dim=(1, 2, 3))
        else:
            new.weight.copy_(weight.sum(dim=1, keepdim=True))
        new.bias.copy_(bias)
    return new
