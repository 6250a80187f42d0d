"""Evaluate a classification model at several annealed-mean temperatures on a training run's held-out split.

Choosing the temperature on the run's own held-out training photos keeps ../shared/data/val untouched for the
numbers we report.  Usage: python scripts/sweep_temperature.py RUN_DIR [FILE.safetensors] [T ...]
"""

import json
import sys
from pathlib import Path

import torch

from colorizer import Colorizer
from colorizer.evaluate import evaluate_folder


def main() -> None:
    run = Path(sys.argv[1])
    weights = run / "best.safetensors"
    arguments = sys.argv[2:]
    if arguments and arguments[0].endswith(".safetensors"):
        weights, arguments = run / arguments[0], arguments[1:]
    temperatures = [float(t) for t in arguments] or [0.3, 0.38, 0.5, 0.65, 0.8, 1.0]
    torch.set_num_threads(2)
    held_out = json.loads((run / "split.json").read_text())["val"]
    colorizer = Colorizer.from_file(weights, device="cpu")
    print(f"{weights}: temperature sweep on {len(held_out)} held-out training photos")
    print(f"{'T':>5} {'dPSNR':>7} {'CF/gt':>6} {'SSIM':>6} {'ab err':>7}")
    for t in temperatures:
        colorizer.temperature = t
        evaluation, _ = evaluate_folder(colorizer, held_out, progress=False)
        model, gray = evaluation.summary.loc["model"], evaluation.summary.loc["gray"]
        print(f"{t:5.2f} {model.psnr - gray.psnr:+7.3f} {model.cf_ratio:6.3f} {model.ssim:6.4f} {model.ab_error:7.3f}",
              flush=True)


if __name__ == "__main__":
    main()
