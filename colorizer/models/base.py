"""What every colorization network shares: padding to any size, output heads and the chroma decoding.

A network takes normalised L ``(B, 1, H, W)`` in [-1, 1] and returns either
- regression: normalised chroma ``(B, 2, H/r, W/r)`` in about [-1, 1],
- classification: logits over quantised ab bins ``(B, Q, H/r, W/r)`` (Zhang et al. 2016), or
- rgb: the whole colour image ``(B, 3, H/r, W/r)`` in [0, 1] (DeepColor as published: its lightness is the
  network's too, so inference shows it as predicted instead of joining chroma to the photo's own lightness),
where ``r`` is the model's ``output_stride`` (1 for full-resolution heads). ``predict_chroma`` turns either
into normalised chroma, so inference code never needs to know which head a model has.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.bins import AbBins

HEADS = ("regress", "classify", "rgb")


@dataclass
class ModelConfig:
    """Fields every architecture config has; subclasses add their own."""

    head: str = "regress"  # "regress" (chroma), "classify" (logits over ab bins, Zhang et al. 2016) or "rgb"
    color_space: str = "lab"  # chroma channels the model predicts: "lab" (a, b) or "luv" (u, v)
    temperature: float = 0.38  # annealed-mean temperature used to decode classification logits
    undo_rebalancing: float = 0.0  # decoding: subtract this times log(class weight) from the logits first
    chroma_gain: float = 1.0  # decoding: scale the decoded chroma (classification heads)
    prior_correction: float = 0.0  # decoding: add this times prior_shift to the logits (0: off, 1: full)
    prior_shift: list[float] | None = None  # per-bin log(true / predicted frequency), colorizer.calibration

    def to_dict(self) -> dict:
        return asdict(self)


class ColorModel(nn.Module):
    """Base class: pads any H, W to ``size_multiple``, runs ``_forward``, crops back."""

    size_multiple: int = 32  # the network's total downsampling; inputs are padded to a multiple of it
    output_stride: int = 1  # chroma comes out at 1/output_stride of the input resolution
    kind: str = "colorizer"

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {config.head!r}")
        if config.head == "classify" and config.color_space != "lab":
            raise ValueError("the classification head quantises Lab ab; use color_space='lab'")
        self.config = config
        self.bins = AbBins() if config.head == "classify" else None
        self.runtime = None  # another backend for ``_forward`` (ONNX Runtime): padded L -> raw output

    def use_runtime(self, runtime) -> None:
        """Runs the network through ``runtime`` (a callable like ``_forward``) instead of PyTorch; None: PyTorch.
        Padding, cropping and decoding stay here, shared by both backends."""
        self.runtime = runtime

    @property
    def out_channels(self) -> int:
        if self.config.head == "classify":
            return self.bins.count
        return 3 if self.config.head == "rgb" else 2

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def export_context(self, lightness: torch.Tensor) -> dict[str, torch.Tensor]:
        """The extra inputs ``_forward`` takes for this (padded) lightness, by name: the exported graph's inputs
        after ``lightness`` (none for most models)."""
        return {}

    def forward(self, lightness: torch.Tensor, **context) -> torch.Tensor:
        """``context``: extra per-photo inputs of models that take them (Manipal's ``global_vector``)."""
        if lightness.dim() != 4 or lightness.shape[1] != 1:
            raise ValueError(f"expected normalised L of shape (B, 1, H, W), got {tuple(lightness.shape)}")
        height, width = lightness.shape[-2:]
        multiple = self.size_multiple
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            # reflect needs the pad to be smaller than the side; replicate works for any size
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            lightness = F.pad(lightness, (0, pad_w, 0, pad_h), mode=mode)
        out = self._forward(lightness, **context) if self.runtime is None else self.runtime(lightness, **context)
        stride = self.output_stride
        return out[..., : math.ceil(height / stride), : math.ceil(width / stride)]

    def predict_output(self, lightness: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
        """The network's output for normalised L: chroma, or bin logits for a classification head.

        ``flip_average``: also run the mirrored photo and average the two predictions (the bin distributions, for a
        classification head, before decoding), a test-time augmentation."""
        out = self(lightness)
        if flip_average:
            mirrored = self(lightness.flip(-1)).flip(-1)
            if self.config.head == "classify":
                # log of the averaged probabilities: softmax of it gives back the average
                out = torch.logsumexp(torch.stack((torch.log_softmax(out.float(), 1),
                                                   torch.log_softmax(mirrored.float(), 1))), 0) - math.log(2)
            else:
                out = (out + mirrored) / 2
        return out

    def predict_chroma(self, lightness: torch.Tensor, temperature: float | None = None,
                       flip_average: bool = False) -> torch.Tensor:
        """Normalised L (B, 1, H, W) -> normalised chroma (B, 2, ceil(H/r), ceil(W/r)); an RGB head's chroma is
        that of its predicted image."""
        out = self.predict_output(lightness, flip_average)
        if self.config.head == "rgb":
            from colorizer.color import normalize_chroma, rgb_to_space

            space = self.config.color_space
            return normalize_chroma(rgb_to_space(out.float().clamp(0, 1), space)[:, 1:], space)
        if self.config.head == "classify":
            t = self.config.temperature if temperature is None else temperature
            return self.bins.decode(out, t, self.config.undo_rebalancing, self.config.chroma_gain,
                                    self.prior_shift())
        return out

    def prior_shift(self, correction: float | None = None) -> torch.Tensor | None:
        """``correction`` (default: the config's) times the fitted per-bin shift; None when either is unset."""
        correction = self.config.prior_correction if correction is None else correction
        if not correction:
            return None
        if self.config.prior_shift is None:
            raise ValueError("this model has no fitted prior shift; fit one with `python -m colorizer calibrate`")
        if len(self.config.prior_shift) != self.bins.count:
            raise ValueError(f"the prior shift has {len(self.config.prior_shift)} values; the model has "
                             f"{self.bins.count} bins")
        return correction * torch.tensor(self.config.prior_shift, dtype=torch.float32)

    def regression_output(self, features: torch.Tensor, activation: str) -> torch.Tensor:
        """Maps a head's raw output to the [-1, 1] chroma range the way the source paper does.

        ``sigmoid`` papers predict chroma in [0, 1]; 2 * sigmoid(x) - 1 puts that on the shared [-1, 1] scale.
        Classification heads return logits untouched; an RGB head maps the same activation onto [0, 1] (a sigmoid
        is DeepColor's own output).
        """
        if self.config.head == "classify":
            return features
        if activation == "sigmoid":
            out = 2 * torch.sigmoid(features) - 1
        elif activation == "tanh":
            out = torch.tanh(features)
        elif activation == "none":
            out = features
        else:
            raise ValueError(f"unknown activation {activation!r}")
        return (out + 1) / 2 if self.config.head == "rgb" else out


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )
