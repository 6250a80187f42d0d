"""Short, equal-budget runs of every source architecture, evaluated on one validation folder, as one table.

Each run trains ``--minutes`` of wall clock from scratch (ImageNet encoders load only from local files; without
them they start from random init), its last checkpoint is evaluated at the default working size, and the row is
kept in RUNS/<name>/metrics.json, so an interrupted sweep picks up where it stopped.  Weights are not shipped.

Usage: PYTHONPATH=. python scripts/ablations.py --data ../shared/data/train --val ../shared/data/val \
           --runs /root/runs/ablations --cache-dir /root/runs/cache [--minutes 6] [--only NAME ...]
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from colorizer import Colorizer
from colorizer.evaluate import evaluate_folder
from colorizer.models import get_entry
from colorizer.weights import read_info


@dataclass(frozen=True)
class Ablation:
    name: str
    model: str
    loss: str
    note: str
    extra: list = field(default_factory=list)


ABLATIONS = [
    Ablation("context_unet_classify", "context_unet", "classify", "this project"),
    Ablation("unet_classify", "unet", "classify", "DeepColor U-Net, Zhang et al.'s loss"),
    Ablation("unet_mse", "unet", "mse", "DeepColor"),
    Ablation("vgg19_unet_blur", "vgg19_unet", "blur", "Brown"),
    Ablation("vgg16_regression_huber", "vgg16_regression", "huber", "UCSD, in LUV"),
    Ablation("fusion_vgg16_mse", "fusion_vgg16", "mse", "Manipal"),
    Ablation("densenet121_unet_mse", "densenet121_unet", "mse", "DeepColor"),
    Ablation("mobilenet_unet_mse", "mobilenet_unet", "mse", "DeepColor"),
    Ablation("resnet18_unet_gan", "resnet18_unet", "gan", "OrGANic, + PatchGAN, 2 L1 epochs first",
             ["--gan-pretrain-epochs", "2"]),
]


def train(ablation: Ablation, run: Path, args) -> None:
    command = [sys.executable, "-m", "colorizer", "train", "--model", ablation.model, "--loss", ablation.loss,
               "--data", args.data, "--out", str(run), "--cache-dir", args.cache_dir, "--minutes", str(args.minutes),
               "--steps-per-epoch", str(args.steps_per_epoch), "--no-progress", *ablation.extra]
    if (run / "last.pt").exists():
        command.append("--resume")  # an interrupted run continues rather than restarting
    with open(run.with_suffix(".log"), "a") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    (run / "trained").touch()


def evaluate(ablation: Ablation, run: Path, val: str) -> dict:
    weights = run / "last.safetensors"
    info = read_info(weights)
    colorizer = Colorizer.from_file(weights, device="cpu")
    parameters = sum(p.numel() for p in colorizer.model.parameters())
    started = time.monotonic()
    evaluation, _ = evaluate_folder(colorizer, val, progress=False)
    seconds = time.monotonic() - started
    model, gray = evaluation.summary.loc["model"], evaluation.summary.loc["gray"]
    with open(run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    speeds = [float(r["images_per_s"]) for r in rows]
    return {
        "name": ablation.name, "model": ablation.model, "loss": ablation.loss, "note": ablation.note,
        "source": get_entry(ablation.model).source, "parameters_m": round(parameters / 1e6, 2),
        "epochs": info.training["epochs"], "minutes": info.training["minutes"],
        "images_seen": info.training["images_seen"], "train_images_per_s": round(sorted(speeds)[len(speeds) // 2], 1),
        "psnr": round(model.psnr, 3), "gray_psnr": round(gray.psnr, 3), "dpsnr": round(model.psnr - gray.psnr, 3),
        "ssim": round(model.ssim, 4), "ab_error": round(model.ab_error, 3), "cf_ratio": round(model.cf_ratio, 3),
        "delta_cf": round(model.delta_cf, 2), "val_photos": len(evaluation.per_photo), "eval_seconds": round(seconds, 1),
        "pretrained_encoder": bool(getattr(getattr(colorizer.model, "encoder", None), "imagenet_loaded", False)),
    }


def table(rows: list[dict]) -> str:
    lines = ["| architecture (paper) | params (M) | loss | train img/s | epochs (crops) | PSNR - gray (dB) | SSIM | "
             "ab error | colourfulness / gt |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: -r["dpsnr"]):
        lines.append(f"| `{r['model']}` ({r['note']}) | {r['parameters_m']} | {r['loss']} | {r['train_images_per_s']} | "
                     f"{r['epochs']} ({r['images_seen']}) | {r['dpsnr']:+.2f} | {r['ssim']:.4f} | {r['ab_error']:.2f} | "
                     f"{r['cf_ratio']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--steps-per-epoch", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for ablation in ABLATIONS:
        if args.only and ablation.name not in args.only:
            continue
        run = runs / ablation.name
        metrics_path = run / "metrics.json"
        if not metrics_path.exists():
            run.mkdir(exist_ok=True)
            if not (run / "trained").exists():
                print(f"{time.strftime('%H:%M:%S')} training {ablation.name}", flush=True)
                train(ablation, run, args)
            metrics_path.write_text(json.dumps(evaluate(ablation, run, args.val), indent=1))
        rows.append({**json.loads(metrics_path.read_text()), "note": ablation.note})
        print(f"{time.strftime('%H:%M:%S')} {ablation.name}: {rows[-1]}", flush=True)
    (runs / "table.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
