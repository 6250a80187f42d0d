"""The mean of several checkpoints of one run (a "uniform model soup"), BatchNorm re-estimated, exported.

Checkpoints of one fine-tuning run from one pretrained start lie in one basin, so their mean is often a better
model than any of them (Wortsman et al. 2022; Izmailov et al. 2018, SWA). BatchNorm's running statistics do not
average: they are re-estimated on the run's own training crops, as the trainer does before every validation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from colorizer.train import Trainer, recalibrate_batchnorm
from colorizer.weights import load_weights


def uniform_soup(state_dicts: list[dict]) -> dict:
    """The mean of each floating-point tensor; integer buffers (BatchNorm's batch counts) from the first."""
    soup = {}
    for key, first in state_dicts[0].items():
        if first.is_floating_point():
            soup[key] = torch.stack([state[key].float() for state in state_dicts]).mean(0)
        else:
            soup[key] = first
    return soup


def export_soup(trainer: Trainer, paths: list[str | Path], out: str | Path) -> list[dict]:
    """Loads ``paths`` (weights files of ``trainer``'s architecture and config), writes their soup to ``out`` in
    the shipped format with ``soup_of`` in its training record, and returns that record."""
    states, records = [], []
    for path in paths:
        model, info = load_weights(path)
        if info.architecture != trainer.config.model:
            raise ValueError(f"{path} holds a {info.architecture!r}, not the run's {trainer.config.model!r}")
        states.append(model.state_dict())
        records.append({"file": Path(path).parent.name + "/" + Path(path).name, "epochs": info.training.get("epochs"),
                        "minutes": info.training.get("minutes")})
    trainer.model.load_state_dict(uniform_soup(states))
    recalibrate_batchnorm(trainer.model, trainer.bn_batches())
    trainer.model.eval()
    trainer.epoch = max(record["epochs"] or 0 for record in records)
    trainer.elapsed = 60 * max(record["minutes"] or 0 for record in records)  # the run's time up to its last file
    trainer.export(Path(out), {}, training={"soup_of": records})
    return records
