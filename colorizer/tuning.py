"""Choosing a classification model's decoding temperature on validation photos, by a stated rule.

The network runs once per photo; each temperature only re-decodes its bin distribution (annealed mean), so a sweep
costs little more than one evaluation. The rule: the highest PSNR among temperatures whose colourfulness is at
least ``min_cf`` of the ground truth's (mean over photos), because dull colours score well on PSNR and vivid wrong
ones score badly: both axes count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from colorizer.data import colorfulness
from colorizer.evaluate import gray_rgb, psnr_uint8, source_of
from colorizer.imageio import load_photo
from colorizer.inference import Colorizer, merge_full_resolution

DEFAULT_TEMPERATURES = (0.2, 0.25, 0.3, 0.38, 0.45, 0.5, 0.6, 0.7, 0.8, 1.0)


def temperature_sweep(colorizer: Colorizer, photos: list[tuple[str, Path]], temperatures=DEFAULT_TEMPERATURES,
                      progress: bool = True) -> pd.DataFrame:
    """One row per (photo, temperature): PSNR of the output and of the gray baseline, colourfulness of both."""
    model = colorizer.model
    if getattr(model.config, "head", None) != "classify":
        raise ValueError(f"{colorizer.name} is a regression model: it has no decoding temperature")
    rows = []
    for name, path in tqdm(photos, desc="sweeping", unit="photo", disable=not progress):
        photo = load_photo(path)
        if photo.rgb is None:
            continue
        logits, shape = _logits(colorizer, photo.gray, colorizer.flip_average)
        gray_psnr = psnr_uint8(gray_rgb(photo), photo.rgb)
        cf_truth = colorfulness(photo.rgb)
        for temperature in temperatures:
            chroma = model.bins.annealed_mean(logits, temperature)[0]
            output = merge_full_resolution(photo.gray, chroma, shape, model.output_stride, colorizer.color_space)
            rows.append({"photo": name, "source": source_of(name), "temperature": temperature,
                         "psnr": psnr_uint8(output, photo.rgb), "gray_psnr": gray_psnr,
                         "colorfulness": colorfulness(output), "cf_truth": cf_truth})
    return pd.DataFrame(rows)


@torch.inference_mode()
def _logits(colorizer: Colorizer, gray: np.ndarray, flip_average: bool) -> tuple[torch.Tensor, tuple[int, int]]:
    """Bin logits of the whole photo at the colorizer's working size (log of the flip-averaged distribution)."""
    lightness, shape = colorizer.network_input(gray)
    return colorizer.model.predict_output(lightness, flip_average).float(), shape


def frontier(sweep: pd.DataFrame, by_source: bool = False) -> pd.DataFrame:
    """Per temperature (and source): PSNR against gray (mean over photos) and colourfulness / ground truth."""
    keys = ["source", "temperature"] if by_source else ["temperature"]
    grouped = sweep.groupby(keys)
    return pd.DataFrame({
        "photos": grouped.size(),
        "psnr_vs_gray": grouped["psnr"].mean() - grouped["gray_psnr"].mean(),
        "cf_ratio": grouped["colorfulness"].mean() / grouped["cf_truth"].mean(),
    })


@dataclass(frozen=True)
class Choice:
    temperature: float
    psnr_vs_gray: float
    cf_ratio: float
    meets_rule: bool  # False: no temperature reached min_cf, so the most colourful one was taken


def choose_temperature(table: pd.DataFrame, min_cf: float = 0.9) -> Choice:
    """The highest PSNR among temperatures with colourfulness >= ``min_cf`` of ground truth (else the most
    colourful temperature). ``table``: ``frontier(sweep)``."""
    eligible = table[table["cf_ratio"] >= min_cf]
    meets = not eligible.empty
    row = eligible["psnr_vs_gray"].idxmax() if meets else table["cf_ratio"].idxmax()
    chosen = table.loc[row]
    return Choice(float(row), float(chosen.psnr_vs_gray), float(chosen.cf_ratio), meets)


def plot_frontier(sweep: pd.DataFrame, path: str | Path, choice: Choice | None = None, min_cf: float = 0.9,
                  title: str = "") -> Path:
    """PSNR against gray versus colourfulness / ground truth, one line per source and one for all photos, each
    point a temperature: where a model sits between dull-and-safe and vivid-and-wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.6))
    for source, table in frontier(sweep, by_source=True).groupby(level="source"):
        table = table.droplevel("source")
        axis.plot(table["cf_ratio"], table["psnr_vs_gray"], "o-", ms=3, lw=1, alpha=0.6,
                  label=f"{source} ({int(table['photos'].iloc[0])})")
    overall = frontier(sweep)
    axis.plot(overall["cf_ratio"], overall["psnr_vs_gray"], "s-", color="black", lw=2, ms=4, label="all photos")
    for temperature, row in overall.iterrows():
        axis.annotate(f"T={temperature:g}", (row.cf_ratio, row.psnr_vs_gray), fontsize=7,
                      xytext=(4, 4), textcoords="offset points")
    if choice is not None:
        axis.plot([choice.cf_ratio], [choice.psnr_vs_gray], "*", color="red", ms=14, label=f"chosen T={choice.temperature:g}")
    axis.axhline(0, color="gray", lw=0.8)
    axis.axvline(min_cf, color="gray", lw=0.8, ls="--")
    axis.set_xlabel("colourfulness / ground truth")
    axis.set_ylabel("PSNR - gray baseline (dB)")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
