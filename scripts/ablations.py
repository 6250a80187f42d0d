"""The source papers' ablations as recipes with one switch changed, trained and evaluated beside their recipe.

Each ablation is a recipe plus a ``--model-config`` change (merged into the recipe's config, the rest as published) or
a training option set by its flag: DeepColor's skip-connection finding on its RGB recipes, UCSD's two switches, and
OrGANic's pretrained cGAN with the label smoothing that separates it from ``organic-cgan``. Each row (and the unchanged
recipe's, trained the same way, as its control) is trained to the recipe's budget or ``--budget-images``,
resumably, the checkpoint its recipe ships (last, or best validation loss) evaluated on ``--val``; rows are kept in
RUNS/<name>/metrics.json (per photo in RUNS/<name>/per_photo.csv), so an interrupted sweep picks up where it stopped,
and the table goes to RUNS/table.md. Each changed row is set beside its control photo by photo: the mean difference
in PSNR and SSIM with the paired 95% interval over the validation photos that `colorizer compare` uses. That interval
speaks to photos, not to training runs: each row is one run, so run-to-run variation is not in it. Each row also
shows the error its paper reports (UCSD's Huber loss over u and v, Brown's MSE over ab, else RGB MSE), measured over
the same photos, beside the paper's own value for that row where it reported one; ``--table`` rebuilds the table from
the rows already evaluated without training anything.
Weights are not shipped. ``--controls DIR``: a control whose recipe has already finished in DIR (the training queue's
runs, same recipe and budget) is evaluated there instead of trained again.

Usage: PYTHONPATH=. python scripts/ablations.py --data ../shared/data/train --val ../shared/data/val \
           --runs /root/runs/ablations --cache-dir /root/runs/recipes/cache [--controls /root/runs/recipes] \
           [--budget-images 20000] [--only NAME ...] [--table]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from colorizer.compare import mean_difference_interval
from colorizer.recipes import PAPER_ERRORS, get_recipe


@dataclass(frozen=True)
class Ablation:
    name: str
    recipe: str
    change: dict = field(default_factory=dict)  # merged into the recipe's model config
    question: str = ""
    training: dict = field(default_factory=dict)  # TrainConfig fields set by their CLI flags, e.g. gan_real_label
    paper: dict = field(default_factory=dict)  # what the paper reported for this row (its Recipe.reported keys)

    @property
    def is_control(self) -> bool:
        return not self.change and not self.training


ABLATIONS = [
    # DeepColor (002): "the skip connections are extremely important" (U-Net 23.8 dB >> DenseNet 19.5 >> MobileNet
    # 13.1, all predicting RGB). Each network with and without skips, RGB output as published.
    Ablation("deepcolor-unet-rgb", "deepcolor-unet-rgb", {}, "DeepColor's U-Net (skips), RGB"),
    Ablation("deepcolor-unet-rgb-noskips", "deepcolor-unet-rgb", {"skips": False}, "the U-Net without its skips"),
    Ablation("deepcolor-densenet-rgb", "deepcolor-densenet-rgb", {}, "DeepColor's DenseNet (no skips), RGB"),
    Ablation("deepcolor-densenet-rgb-skips", "deepcolor-densenet-rgb", {"skips": True}, "the DenseNet with skips"),
    Ablation("deepcolor-mobilenet-rgb", "deepcolor-mobilenet-rgb", {}, "DeepColor's MobileNet (no skips), RGB"),
    Ablation("deepcolor-mobilenet-rgb-skips", "deepcolor-mobilenet-rgb", {"skips": True}, "the MobileNet with skips"),
    # UCSD (001): transpose-conv upsampling and a last sigmoid were its best; bilinear (Hwang & Zhou) and ReLU worse
    Ablation("ucsd-vgg16", "ucsd-vgg16", {}, "UCSD as published: transpose convs, sigmoid"),
    Ablation("ucsd-vgg16-bilinear", "ucsd-vgg16", {"upsample": "bilinear"}, "bilinear upsampling (ablation 2)",
             paper={"test_huber": 0.001934}),
    Ablation("ucsd-vgg16-relu", "ucsd-vgg16", {"last_activation": "relu"}, "a last ReLU (ablation 1)",
             paper={"test_huber": 0.003386}),
    # OrGANic (004): pretraining the generator on L1 helped in the paper; here it did worse than organic-cgan, which
    # also differs in its one-sided label smoothing (0.9). The pretrained recipe with that smoothing separates the two.
    Ablation("organic-cgan-pretrained", "organic-cgan-pretrained", {}, "OrGANic's pretrained cGAN as published"),
    Ablation("organic-cgan-pretrained-smoothed", "organic-cgan-pretrained", {},
             "the same with organic-cgan's label smoothing 0.9", training={"gan_real_label": 0.9}),
]


def train_command(ablation: Ablation, run: Path, args) -> list[str]:
    command = [sys.executable, "-m", "colorizer", "train", "--recipe", ablation.recipe, "--data", args.data,
               "--out", str(run), "--cache-dir", args.cache_dir, "--resume", "--no-progress"]
    if ablation.change:
        command += ["--model-config", json.dumps(ablation.change)]
    for option, value in ablation.training.items():
        command += [f"--{option.replace('_', '-')}", str(value)]
    if args.budget_images:
        command += ["--budget-images", str(args.budget_images)]
    return command


def evaluate(ablation: Ablation, run: Path, val: str, out: Path) -> dict:
    """The row's metrics; its per-photo metrics go to ``out``/per_photo.csv for the paired comparison."""
    from colorizer import Colorizer
    from colorizer.evaluate import evaluate_folder
    from colorizer.weights import read_info

    weights = run / f"{get_recipe(ablation.recipe).checkpoint}.safetensors"
    info = read_info(weights)
    evaluation, _ = evaluate_folder(Colorizer.from_file(weights, device="cpu"), val, progress=False)
    evaluation.per_photo.to_csv(out / "per_photo.csv", index=False)
    model, gray = evaluation.summary.loc["model"], evaluation.summary.loc["gray"]
    return {"name": ablation.name, "recipe": ablation.recipe, "change": {**ablation.change, **ablation.training},
            "question": ablation.question, "images_seen": info.training["images_seen"],
            "minutes": info.training["minutes"], "dpsnr": round(model.psnr - gray.psnr, 3),
            "ssim": round(model.ssim, 4), "cf_ratio": round(model.cf_ratio, 3), "val_photos": len(evaluation.per_photo)}


def versus_control(per_photo: pd.DataFrame, control: pd.DataFrame, metrics=("psnr", "ssim")) -> dict:
    """Mean change in each metric from the control, photo by photo: (estimate, low, high) of the paired 95%
    interval for each."""
    paired = per_photo.merge(control, on="photo", suffixes=("", "_control"))
    return {"photos": len(paired), **{metric: mean_difference_interval(paired[f"{metric}_control"].to_numpy(),
                                                                          paired[metric].to_numpy())
                                      for metric in metrics}}


def paper_error(recipe: str) -> tuple[str, str] | None:
    """(the paper's key, our per-photo column) of the error a recipe's paper reports, measured its way."""
    reported = get_recipe(recipe).reported
    for key in ("test_huber", "val_MSE_ab", "MSE"):
        if key in reported:
            return key, PAPER_ERRORS[key][0]
    return None


def _interval(estimate: float, low: float, high: float, digits: str) -> str:
    return f"{estimate:+{digits}} [{low:+{digits}}, {high:+{digits}}]"


def table(rows: list[dict], runs: Path | None = None) -> str:
    """The Markdown table; with ``runs``, each row's paper error from its per-photo metrics, and changed rows read
    against their control photo by photo."""
    controls = {r["recipe"]: r["name"] for r in rows if not r["change"]}
    papers = {a.name: a.paper for a in ABLATIONS}
    lines = ["| run | recipe | change | crops | PSNR - gray (dB) | SSIM | colourfulness / truth | the paper's error: "
             "ours (the paper's) | vs control, paired over photos (95% interval): PSNR (dB), SSIM, the paper's error |",
             "|---|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        change = ", ".join(f"{k}={v}" for k, v in r["change"].items()) or "(as published)"
        per_photo = runs / r["name"] / "per_photo.csv" if runs is not None else None
        error = paper_error(r["recipe"])
        ours = ""
        if error and per_photo is not None and per_photo.exists():
            key, column = error
            reported = (papers.get(r["name"]) or {}) if r["change"] else get_recipe(r["recipe"]).reported
            ours = f"{key} {pd.read_csv(per_photo)[column].mean():.4g} ({reported.get(key, 'not reported')})"
        paired = ""
        control = controls.get(r["recipe"])
        if r["change"] and control and per_photo is not None and per_photo.exists() \
                and (runs / control / "per_photo.csv").exists():
            metrics = ("psnr", "ssim") + ((error[1],) if error else ())
            v = versus_control(pd.read_csv(per_photo), pd.read_csv(runs / control / "per_photo.csv"), metrics)
            parts = [_interval(*v["psnr"], ".2f"), _interval(*v["ssim"], ".3f")]
            if error:
                parts.append(_interval(*v[error[1]], ".3g"))
            paired = ", ".join(parts) + f"; {v['photos']} photos"
        lines.append(f"| {r['name']} | {r['recipe']} | {change} | {r['images_seen']:,} | {r['dpsnr']:+.2f} | "
                     f"{r['ssim']:.4f} | {r['cf_ratio']:.2f} | {ours} | {paired} |")
    return "\n".join(lines)


def finished_control(ablation: Ablation, controls: Path | None, budget_images: int | None) -> Path | None:
    """The queue's finished run of an unchanged recipe, when it can stand in for this control: same recipe, same
    budget (the recipe's own; a ``--budget-images`` sweep trains its controls at that budget)."""
    if not ablation.is_control or controls is None or budget_images is not None:
        return None
    run = controls / ablation.recipe
    return run if (run / "done.json").exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--budget-images", type=int, default=None, help="crops per run (default: the recipe's)")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--table", action="store_true",
                        help="only rebuild RUNS/table.md from the rows already evaluated (trains nothing)")
    parser.add_argument("--controls", type=Path, default=None,
                        help="the training queue's runs: finished unchanged recipes there are not trained again")
    args = parser.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for ablation in ABLATIONS:
        if args.only and ablation.name not in args.only:
            continue
        get_recipe(ablation.recipe)  # an unknown recipe fails before hours of training
        run = runs / ablation.name
        metrics_path = run / "metrics.json"
        if args.table:
            if metrics_path.exists():
                rows.append(json.loads(metrics_path.read_text()))
            continue
        run.mkdir(exist_ok=True)
        if not metrics_path.exists() or not (run / "per_photo.csv").exists():
            reused = finished_control(ablation, args.controls, args.budget_images)
            if reused is None and metrics_path.exists():
                reused = Path(json.loads(metrics_path.read_text()).get("run", run))  # evaluated before per-photo rows
            if reused is not None and reused != run:
                print(f"{time.strftime('%H:%M:%S')} {ablation.name}: the queue's finished run {reused}", flush=True)
                metrics_path.write_text(json.dumps({**evaluate(ablation, reused, args.val, run), "run": str(reused)},
                                                   indent=1))
            else:
                if not (run / "done.json").exists():
                    print(f"{time.strftime('%H:%M:%S')} training {ablation.name}", flush=True)
                    with open(run / "train.out", "a") as log:
                        subprocess.run(train_command(ablation, run, args), check=True, stdout=log,
                                       stderr=subprocess.STDOUT)
                metrics_path.write_text(json.dumps(evaluate(ablation, run, args.val, run), indent=1))
        rows.append(json.loads(metrics_path.read_text()))
        print(f"{time.strftime('%H:%M:%S')} {ablation.name}: {rows[-1]}", flush=True)
    (runs / "table.md").write_text(table(rows, runs) + "\n")
    print(table(rows, runs))


if __name__ == "__main__":
    main()
