"""ONNX export, and ONNX Runtime as a second backend for the network.

Only the network goes through ONNX: the exported graph maps normalised lightness, padded to the model's
``size_multiple``, to its raw output (bin logits, or chroma for regression models). Padding, cropping and the
decoding (annealed mean, rebalancing, gain, prior) stay in the shared PyTorch code, so both backends give the same
picture from the same output.

Exporter: ``torch.onnx.export(dynamo=True)`` (PyTorch's default), opset ``OPSET``, batch 1, height and width dynamic
in multiples of ``size_multiple``. ``onnxruntime`` is an optional extra (``pip install colorizer[onnx]``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from colorizer import MissingExtraError

log = logging.getLogger(__name__)

OPSET = 18
INPUT, OUTPUT = "lightness", "output"
MAX_SIDE = 16384  # pixels the exported graph accepts per side (the working size is far below)


class _Network(nn.Module):
    """The exported part of a model: padded lightness -> raw output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.model._forward(lightness)


class _NetworkWithContext(nn.Module):
    """The same for a model with one context input (Manipal's global vector, computed in PyTorch)."""

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, lightness: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.model._forward(lightness, **{self.name: context})


def cache_dir() -> Path:
    """Where exported graphs are kept between runs: ``$COLORIZER_CACHE`` or ``~/.cache/colorizer``."""
    return Path(os.environ.get("COLORIZER_CACHE") or Path.home() / ".cache" / "colorizer") / "onnx"


def export_onnx(model: nn.Module, path: str | os.PathLike, opset: int = OPSET,
                metadata: Optional[dict[str, str]] = None) -> Path:
    """Exports ``model``'s network to ``path`` (one self-contained .onnx file); ``metadata`` goes into the file."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter's translator)
    except ImportError:
        raise MissingExtraError("ONNX export needs onnx and onnxscript: pip install 'colorizer[onnx]'") from None
    from torch.export import Dim

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    multiple = model.size_multiple
    example = torch.zeros(1, 1, 8 * multiple, 10 * multiple)
    model = model.float().eval()
    with torch.no_grad():
        context = model.export_context(example)
    sides = {2: multiple * Dim("height_blocks", min=1, max=MAX_SIDE // multiple),
             3: multiple * Dim("width_blocks", min=1, max=MAX_SIDE // multiple)}
    if len(context) > 1:
        raise ValueError("models with more than one context input cannot be exported")
    network = (_NetworkWithContext(model, next(iter(context))) if context else _Network(model)).eval()
    shapes = (sides, None) if context else (sides,)
    with torch.no_grad():
        program = torch.onnx.export(network, (example, *context.values()), dynamo=True, opset_version=opset,
                                    input_names=[INPUT, *context], output_names=[OUTPUT], dynamic_shapes=shapes,
                                    external_data=False, verbose=False)
    graph = program.model_proto
    for key, value in {"size_multiple": str(multiple), "output_stride": str(model.output_stride),
                       **(metadata or {})}.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    onnx.save(graph, partial)
    os.replace(partial, path)
    return path


def session_options(threads: Optional[int] = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # torch's thread count (one knob for both backends and the merge), threads that sleep instead of spinning while
    # they wait: measured (bench/RESULTS.md), spinning threads were 2.2-2.9x slower when another process kept a core
    # busy; sleeping ones are as fast as spinning ones on an idle machine and nearly as resilient as one thread
    options.intra_op_num_threads = threads or max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxRunner:
    """Runs an exported network in ONNX Runtime (CPU), one session per file, built once."""

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError("the ONNX backend needs ONNX Runtime: pip install 'colorizer[onnx]'") from None
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                            providers=["CPUExecutionProvider"])

    def __call__(self, lightness: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        """Padded normalised L (B, 1, H, W) and the model's context inputs -> raw output, as PyTorch's ``_forward``
        gives it (float32, CPU)."""
        arrays = {INPUT: lightness.detach().float().cpu().contiguous().numpy(),
                  **{name: value.detach().float().cpu().contiguous().numpy() for name, value in context.items()}}
        outputs = [self.session.run([OUTPUT], {name: array[index: index + 1] for name, array in arrays.items()})[0]
                   for index in range(len(arrays[INPUT]))]
        return torch.from_numpy(outputs[0] if len(outputs) == 1 else np.concatenate(outputs))


def onnx_file(weights_sha256: Optional[str], name: str, precision: str = "fp32") -> Path:
    """The cache path of a model's exported graph (named by its weights' hash, so new weights get a new file)."""
    key = (weights_sha256 or "untrained")[:16]
    return cache_dir() / f"{name}-{key}-opset{OPSET}-{precision}.onnx"


def calibration_inputs(colorizer, photos: list, count: int = 64) -> list[dict[str, np.ndarray]]:
    """Network inputs (padded lightness at the working size) of ``count`` photos drawn evenly from ``photos`` (a
    fixed draw: every folder of a tree, not the first one's photos alone), for int8 calibration."""
    import random

    import torch.nn.functional as F

    from colorizer.imageio import load_photo

    inputs = []
    for path in sorted(random.Random(0).sample(list(photos), min(count, len(photos)))):
        lightness, _ = colorizer.network_input(load_photo(path).gray)
        multiple = colorizer.model.size_multiple
        pad_h, pad_w = (-lightness.shape[-2]) % multiple, (-lightness.shape[-1]) % multiple
        padded = F.pad(lightness, (0, pad_w, 0, pad_h), mode="replicate")
        feed = {INPUT: padded.contiguous().numpy()}
        feed.update({name: value.numpy() for name, value in colorizer.model.export_context(padded).items()})
        inputs.append(feed)
    return inputs


def quantize_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike,
                  inputs: list[dict[str, np.ndarray]]) -> Path:
    """Static int8 quantization (QDQ, per-channel int8 weights, uint8 activations, MinMax ranges) calibrated on
    ``inputs``. Measured on the default model (bench/RESULTS.md): 1.6x faster at 256 px, but not lossless (less
    colourful: 0.897 of ground truth against fp32's 0.933), so nothing uses it unless asked."""
    import tempfile

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(inputs)

        def get_next(self):
            return next(self.feeds, None)

    int8_path = Path(int8_path)
    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return int8_path

