"""Bring the training records of shipped weights files up to what the exporter writes today, tensors untouched.

    python scripts/amend_records.py weights/*.safetensors

Files exported before the exporter recorded them lack two facts and may hold one path:
- ``imagenet_encoder_loaded``: whether an ImageNet file actually loaded into the encoder. No torchvision ImageNet
  file (VGG, ResNet, DenseNet, MobileNet) has ever been on a machine this project trained on, so for those encoders
  it is False; EfficientNet-Lite encoders record it themselves.
- ``optimizer.encoder_lr``: the rate the encoder actually trained at. A random encoder trains at ``lr`` with the
  rest (colorizer.train._parameter_groups), so it is None there, as the exporter now writes it.
- ``init``: an absolute path to the checkpoint a run started from, cut to its last two parts.
- ``description``: a recipe's one-line description as the recipe now words it (DeepColor's ab models came to say that
  they are the project's variant, not the paper's RGB models), the old one kept in ``description_was``.
Each amended record says so in ``record_amended``. The tensors are copied byte for byte and checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from colorizer import models  # noqa: E402
from colorizer.recipes import RECIPES  # noqa: E402
from colorizer.train import portable_path  # noqa: E402
from colorizer.weights import METADATA_KEY, without_pretrained  # noqa: E402

AMENDED = ("2026-12-04, scripts/amend_records.py: fields the exporter of the time did not write "
           "(imagenet_encoder_loaded, the encoder learning rate that took effect) and portable init paths; "
           "tensors unchanged")
DESCRIBED = "2026-12-04, scripts/amend_records.py: the recipe's description reworded; tensors unchanged"


def has_imagenet_encoder(architecture: str, config: dict) -> bool:
    """Whether the architecture's encoder is one that could have loaded ImageNet weights."""
    model = models.create(architecture, **without_pretrained(config))
    return hasattr(getattr(model, "encoder", None), "imagenet_loaded")


def amended(payload: dict) -> dict:
    """The record as today's exporter would write it, given what is known of the run; unchanged if nothing is missing."""
    training = dict(payload.get("training", {}))
    before = json.dumps(training, sort_keys=True)
    if "init" in training:
        training["init"] = portable_path(training["init"])
    if "imagenet_encoder_loaded" not in training and has_imagenet_encoder(payload["architecture"], payload["config"]):
        training["imagenet_encoder_loaded"] = False
    optimizer = dict(training.get("optimizer", {}))
    if optimizer.get("encoder_lr") is not None and not training.get("imagenet_encoder_loaded", False):
        optimizer["encoder_lr"] = None  # no ImageNet encoder, or a random one trained at lr
        training["optimizer"] = optimizer
    if json.dumps(training, sort_keys=True) != before:
        training["record_amended"] = AMENDED
    description = payload.get("description", "")
    recipe = RECIPES.get(training.get("recipe"))
    if recipe is not None and description != recipe.system:
        training["description_was"], description = description, recipe.system
        training["description_amended"] = DESCRIBED
    if json.dumps(training, sort_keys=True) == before:
        return payload
    return {**payload, "description": description, "training": training}


def amend_file(path: Path) -> bool:
    """Rewrites ``path`` with its amended record; True if anything changed."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    payload = json.loads(metadata[METADATA_KEY])
    new = amended(payload)
    if new is payload:
        return False
    scratch = path.with_suffix(".amending")
    save_file(tensors, str(scratch), metadata={**metadata, METADATA_KEY: json.dumps(new, sort_keys=True)})
    with safe_open(str(scratch), framework="pt") as handle:
        if set(handle.keys()) != set(tensors) or not all(handle.get_tensor(k).equal(tensors[k]) for k in tensors):
            scratch.unlink()
            raise RuntimeError(f"{path}: tensors changed in the rewrite; left as it was")
    scratch.replace(path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.files:
        print(f"{path.name}: {'amended' if amend_file(path) else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
