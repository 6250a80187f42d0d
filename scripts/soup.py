"""Average the weights of checkpoints of one run (``colorizer.soup``) and export the result.

Usage: python scripts/soup.py RUN/best.safetensors RUN/last.safetensors --run RUN --out soup.safetensors
(``--run``: the run whose ``last.pt`` holds the training config: its photos re-estimate BatchNorm)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from colorizer.soup import export_soup  # noqa: E402
from colorizer.train import TrainConfig, Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="two or more .safetensors files of one recipe")
    parser.add_argument("--run", required=True, help="the run folder (its last.pt holds the training config)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    checkpoint = torch.load(Path(args.run) / "last.pt", map_location="cpu", weights_only=False)
    config = TrainConfig(**{**checkpoint["config"], "progress": False, "out": str(Path(args.out).parent)})
    records = export_soup(Trainer(config), args.weights, args.out)
    print(f"wrote {args.out}: the mean of " + ", ".join(f"{r['file']} (epoch {r['epochs']})" for r in records))


if __name__ == "__main__":
    main()
