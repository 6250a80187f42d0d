"""OrGANic's Table 1 point across every shipped model: do MSE and SSIM reward gray, uncoloured output?

    python scripts/metrics_vs_colour.py --val ../shared/data/val --cache /root/runs/eval/metrics-vs-colour \
        [--plot docs/metrics_vs_colour.png] [--models NAME ...] [--extra NAME=WEIGHTS ...]

The paper found its black-and-white baseline best on MSE and SSIM and its most colourful cGAN worst. Each shipped
model (and the gray baseline, which adds no colour at all) is evaluated on ``--val``; the table gives MSE, SSIM,
PSNR against gray, CIEDE2000 and colourfulness as a share of the truth's, and Spearman's rank correlation across the
models between colourfulness and each error (scipy). ``--extra`` adds weights files that do not ship (a run's
checkpoint, such as a paper's baseline outside the shipping bounds), named as given. Each model's summary is cached
in ``--cache`` under its weights' SHA-256, so a rerun evaluates only models that changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from colorizer import Colorizer  # noqa: E402
from colorizer.evaluate import evaluate_folder  # noqa: E402
from colorizer.weights import fingerprint, shipped_weights  # noqa: E402

COLUMNS = ("mse", "ssim", "psnr", "ciede2000", "cf_ratio")
SSIM_ZOOM_FLOOR = 0.88  # the plot's third panel enlarges SSIM above this, where most models crowd


def summary_of(name: str, path: Path, val: str, cache: Path) -> dict:
    cached = cache / f"{name}-{fingerprint(path)[:16]}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    evaluation, _ = evaluate_folder(Colorizer.from_file(path, device="cpu"), val, progress=False)
    rows = {label: {c: float(evaluation.summary.loc[label, c]) for c in COLUMNS} for label in ("model", "gray")}
    rows["photos"] = len(evaluation.per_photo)
    cached.write_text(json.dumps(rows, indent=1))
    return rows


def table(rows: dict, gray: dict) -> str:
    lines = ["| model | colourfulness / truth | MSE (RGB in [0, 1]) | SSIM | PSNR vs gray (dB) | CIEDE2000 |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in sorted({**rows, "gray (no colour)": gray}.items(), key=lambda item: item[1]["cf_ratio"]):
        lines.append(f"| {name} | {r['cf_ratio']:.2f} | {r['mse']:.4f} | {r['ssim']:.3f} | "
                     f"{r['psnr'] - gray['psnr']:+.2f} | {r['ciede2000']:.2f} |")
    return "\n".join(lines)


def correlations(rows: dict, gray: dict) -> dict:
    points = [*rows.values(), gray]
    colour = [p["cf_ratio"] for p in points]
    result = {}
    for metric in ("mse", "ssim", "ciede2000"):
        rho, p = spearmanr(colour, [point[metric] for point in points])
        result[metric] = {"rho": round(float(rho), 3), "p": round(float(p), 4), "models": len(points)}
    return result


def _group(name: str) -> tuple[str, str]:
    """(legend label, marker) of a point: the project's own models, or a source paper's system by its output."""
    from colorizer.recipes import RECIPES

    recipe = RECIPES.get(name.removesuffix("-l1phase"))
    if name == "gray":
        return "gray (no colour)", "o"
    if recipe is None:
        return "the project's own models", "D"
    if recipe.model_config.get("head") == "rgb":
        return "a paper's system, RGB output", "s"
    return "a paper's system, ab over the photo's lightness", "o"


def _unclutter(axis, texts, steps: int = 60) -> None:
    """Nudge overlapping labels apart vertically (display space), so that dense clusters stay readable."""
    renderer = axis.figure.canvas.get_renderer()
    for _ in range(steps):
        moved = False
        boxes = [t.get_window_extent(renderer) for t in texts]
        for i in range(len(texts)):
            for j in range(i):
                if boxes[i].overlaps(boxes[j]):
                    lower, upper = (i, j) if boxes[i].y0 <= boxes[j].y0 else (j, i)
                    for index, step in ((lower, -2), (upper, 2)):
                        x, y = texts[index].get_position()
                        texts[index].set_position((x, y + step))
                    moved = True
        if not moved:
            return


def plot(rows: dict, gray: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {**rows, "gray": gray}
    colours = {"gray (no colour)": "0.5", "the project's own models": "C2",
               "a paper's system, ab over the photo's lightness": "C0", "a paper's system, RGB output": "C3"}
    figure, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    panels = ((axes[0], "mse", "MSE (RGB in [0, 1]), lower is 'better'", None),
              (axes[1], "ssim", "SSIM, higher is 'better'", None),
              (axes[2], "ssim", "SSIM, the top of the middle panel", SSIM_ZOOM_FLOOR))
    labels = []
    for axis, metric, label, floor in panels:
        texts, seen = [], set()
        for name, r in points.items():
            if floor is not None and r[metric] < floor:
                continue
            group, marker = _group(name)
            axis.scatter(r["cf_ratio"], r[metric], color=colours[group], marker=marker,
                         label=None if group in seen else group)
            seen.add(group)
            if floor is None and metric == "ssim" and r[metric] >= SSIM_ZOOM_FLOOR:
                continue  # labelled in the zoomed panel
            texts.append(axis.annotate(name, (r["cf_ratio"], r[metric]), fontsize=7, xytext=(4, 2),
                                       textcoords="offset points"))
        axis.set_xlabel("colourfulness / ground truth's")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        labels.append((axis, texts))
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    figure.suptitle("The shipped models and the papers' systems on the same validation photos: does colour cost MSE "
                    "and SSIM?")
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    for axis, texts in labels:
        _unclutter(axis, texts)
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", required=True)
    parser.add_argument("--cache", required=True, help="folder for each model's cached summary")
    parser.add_argument("--plot", default=None, help="scatter plot of MSE and SSIM against colourfulness")
    parser.add_argument("--models", nargs="*", default=None, help="default: every shipped model")
    parser.add_argument("--extra", nargs="*", default=[], metavar="NAME=WEIGHTS",
                        help="weights files that do not ship, evaluated beside the shipped ones")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    shipped = shipped_weights()
    paths = {name: shipped[name] for name in (args.models or sorted(shipped))}
    for item in args.extra:
        name, _, path = item.partition("=")
        if not path or not Path(path).is_file():
            parser.error(f"--extra wants NAME=WEIGHTS with an existing file, got {item!r}")
        paths[name] = Path(path)
    rows, gray = {}, None
    for name, path in paths.items():
        summary = summary_of(name, path, args.val, cache)
        rows[name], gray = summary["model"], summary["gray"]
        print(f"{name}: colourfulness {rows[name]['cf_ratio']:.3f}, MSE {rows[name]['mse']:.4f}, "
              f"SSIM {rows[name]['ssim']:.3f}", flush=True)
    print(table(rows, gray))
    print(json.dumps({"spearman_vs_colourfulness": correlations(rows, gray)}, indent=1))
    if args.plot:
        plot(rows, gray, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
