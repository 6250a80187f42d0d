"""Export a run's latest checkpoint (last.pt) as RUN_DIR/last.safetensors, in the shipped-weights format.

The best-by-validation-loss file is chosen on a noisy loss; this lets the latest weights be compared on metrics.
Usage: python scripts/export_last.py RUN_DIR
"""

import sys
from pathlib import Path

import torch

from colorizer import models
from colorizer.weights import read_info, save_weights


def main() -> None:
    run = Path(sys.argv[1])
    info = read_info(run / "best.safetensors")  # same architecture and config as the run
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    model = models.create(info.architecture, **info.config)
    model.load_state_dict(state["model"])
    info.training = {**info.training, "epochs": state["epoch"], "minutes": round(state["elapsed"] / 60, 1),
                     "images_seen": state["epoch"] * info.training["images_seen"] // max(1, info.training["epochs"])}
    info.metrics = {k: round(v, 5) for k, v in state["history"][-1].items() if k.startswith("val_")}
    save_weights(model, run / "last.safetensors", info)
    print(f"exported epoch {state['epoch']} to {run / 'last.safetensors'}")


if __name__ == "__main__":
    main()
