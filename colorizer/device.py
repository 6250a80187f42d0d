"""The one place that picks the compute device."""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def _log_choice(device: str, reason: str) -> None:
    log.info("using device %s (%s)", device, reason)


def select_device(preferred: str | torch.device | None = None) -> torch.device:
    """``preferred`` if given (e.g. "cpu", "cuda:1"), else CUDA, then Apple MPS, then CPU."""
    if preferred is not None:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(preferred)!r} requested but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {str(preferred)!r} requested but MPS is not available")
        _log_choice(str(device), "requested")
        return device
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    _log_choice(str(device), "auto")
    return device
