"""Copy a training run's best weights into weights/ under a product name, with decoding settings and metrics.

Usage: python scripts/ship_weights.py RUN_DIR NAME --temperature T --description TEXT [--metrics JSON]
           [--file last.safetensors] [--undo-rebalancing B] [--chroma-gain G]
       python scripts/ship_weights.py --preset NAME --base BASE --temperature T --description TEXT [--metrics JSON]
           [--undo-rebalancing B] [--chroma-gain G]

A preset named like its base (``--preset balanced --base balanced``) sets the decoding that weights file ships
with, without rewriting its bytes.
"""

import argparse
import json
from pathlib import Path

from colorizer.weights import WEIGHTS_DIR, load_weights, read_info, save_weights


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", nargs="?")
    parser.add_argument("name")
    parser.add_argument("--temperature", type=float, required=True)
    parser.add_argument("--undo-rebalancing", type=float, default=0.0)
    parser.add_argument("--chroma-gain", type=float, default=1.0)
    parser.add_argument("--description", required=True)
    parser.add_argument("--metrics", default="{}")
    parser.add_argument("--file", default="best.safetensors", help="which of the run's weight files to ship")
    parser.add_argument("--preset", action="store_true", help="write NAME.preset.json pointing at --base")
    parser.add_argument("--base", default=None)
    args = parser.parse_args()
    metrics = json.loads(args.metrics)
    if args.preset:
        preset = {"weights": f"{args.base}.safetensors", "temperature": args.temperature,
                  "undo_rebalancing": args.undo_rebalancing, "chroma_gain": args.chroma_gain,
                  "description": args.description, "metrics": metrics}
        (WEIGHTS_DIR / f"{args.name}.preset.json").write_text(json.dumps(preset, indent=2) + "\n")
        return
    model, info = load_weights(Path(args.run) / args.file)
    model.config.temperature = args.temperature
    model.config.undo_rebalancing = args.undo_rebalancing
    model.config.chroma_gain = args.chroma_gain
    info.config = model.config.to_dict()
    info.description = args.description
    info.metrics = metrics
    save_weights(model, WEIGHTS_DIR / f"{args.name}.safetensors", info, half=True)
    print(read_info(WEIGHTS_DIR / f"{args.name}.safetensors"))


if __name__ == "__main__":
    main()
