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


def plot(rows: dict, gray: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {**rows, "gray": gray}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, metric, label in ((axes[0], "mse", "MSE (RGB in [0, 1]), lower is 'better'"),
                                (axes[1], "ssim", "SSIM, higher is 'better'")):
        for name, r in points.items():
            axis.scatter(r["cf_ratio"], r[metric], color="0.5" if name == "gray" else "C0")
            axis.annotate(name, (r["cf_ratio"], r[metric]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_xlabel("colourfulness / ground truth's")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    figure.suptitle("Every shipped model on the same validation photos: does colour cost MSE and SSIM?")
    figure.tight_layout()
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
