"""A sheet of old photos (no ground truth) colorized by several models side by side, for looking rather than reading.

A model is a shipped name, an architecture or a .safetensors path, optionally with ``@T`` for another annealed-mean
temperature, ``@T:BETA:GAIN`` for another decoding (undo rebalancing BETA, chroma gain GAIN) or ``@T:BETA:GAIN:S``
(also S of a fitted prior shift): ``balanced``, ``vivid``, ``/root/runs/x/last.safetensors@0.3``,
``balanced@0.5:0.25:1.3`` (``Colorizer.from_spec``).
Usage: PYTHONPATH=. python scripts/historical_sheet.py ../shared/data/historical --models balanced,vivid \
           --count 12 --out /root/runs/historical.jpg
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from colorizer import Colorizer
from colorizer.data import list_images
from colorizer.imageio import load_photo


def spread(paths: list[Path], count: int) -> list[Path]:
    """``count`` paths taken evenly over the sorted list, so every subfolder is represented."""
    if len(paths) <= count:
        return paths
    return [paths[int(i)] for i in np.linspace(0, len(paths) - 1, count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--models", default="balanced,vivid")
    parser.add_argument("--labels", default=None, help="comma-separated column titles (default: the model specs)")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--size", type=int, default=None, help="working size (default: each model's)")
    parser.add_argument("--thumb", type=int, default=240, help="thumbnail height in pixels")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colorizers = [Colorizer.from_spec(spec, device="cpu") for spec in args.models.split(",")]
    if args.labels:
        labels = args.labels.split(",")
        if len(labels) != len(colorizers):
            parser.error(f"--labels names {len(labels)} columns for {len(colorizers)} models")
        for colorizer, label in zip(colorizers, labels):
            colorizer.label = label
    paths = spread(list_images(args.folder), args.count)
    columns = 1 + len(colorizers)
    inch = args.thumb / 100
    figure, axes = plt.subplots(len(paths), columns, figsize=(columns * inch * 1.3, len(paths) * inch), squeeze=False)
    for row, path in enumerate(paths):
        photo = load_photo(path)
        panels = [(photo.gray, "input", "gray")]  # float in [0, 1]
        for colorizer in colorizers:
            panels.append((np.asarray(colorizer.colorize_photo(photo, size=args.size)), colorizer.label, None))
        for column, (image, title, cmap) in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(image, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=10)
        axes[row, 0].set_ylabel(path.stem[:20], fontsize=7)
        print(f"{row + 1}/{len(paths)} {path}", flush=True)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
