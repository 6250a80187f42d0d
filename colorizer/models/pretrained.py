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


def single_channel_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of an RGB first conv that takes one channel: its kernel is the sum over the RGB kernels.

    For a gray input (R = G = B) this gives exactly the response the RGB conv would.
    """
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new
