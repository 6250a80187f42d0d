"""Choosing a classification model's decoding on validation photos, by a stated rule.

The network runs once per photo; each decoding (temperature, undoing part of the class rebalancing, a chroma gain,
a share of the fitted prior shift: ``AbBins.decode``) only re-decodes its bin distribution, so a sweep costs little
more than one evaluation per decoding. The rule: the highest PSNR among decodings whose colourfulness is at least
``min_cf`` of the ground truth's (mean over photos), because dull colours score well on PSNR and vivid wrong ones
score badly: both axes count.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from colorizer.data import colorfulness
from colorizer.evaluate import gray_rgb, psnr_uint8, source_of
from colorizer.imageio import load_photo
from colorizer.inference import Colorizer, merge_full_resolution

DEFAULT_TEMPERATURES = (0.2, 0.25, 0.3, 0.38, 0.45, 0.5, 0.6, 0.7, 0.8, 1.0)
DECODING = ("temperature", "undo_rebalancing", "chroma_gain", "prior_correction")  # columns naming one decoding


def decoding_sweep(colorizer: Colorizer, photos: list[tuple[str, Path]], temperatures=DEFAULT_TEMPERATURES,
                   undo_rebalancing=(0.0,), gains=(1.0,), prior_corrections=(0.0,),
                   progress: bool = True) -> pd.DataFrame:
    """One row per (photo, decoding): PSNR of the output and of the gray baseline, colourfulness of both. Every
    combination of the four lists is a decoding (``prior_corrections`` other than 0 need a fitted prior shift)."""
    model = colorizer.model
    if getattr(model.config, "head", None) != "classify":
        raise ValueError(f"{colorizer.name} is a regression model: it has no decoding to tune")
    shifts = {correction: model.prior_shift(correction) for correction in prior_corrections}
    rows = []
    for name, path in tqdm(photos, desc="sweeping", unit="photo", disable=not progress):
        photo = load_photo(path)
        if photo.rgb is None:
            continue
        logits, shape = colorizer.network_output(photo.gray)
        gray_psnr = psnr_uint8(gray_rgb(photo), photo.rgb)
        cf_truth = colorfulness(photo.rgb)
        for beta, correction, temperature in itertools.product(undo_rebalancing, prior_corrections, temperatures):
            chroma = model.bins.decode(logits, temperature, beta, shift=shifts[correction])[0]
            for gain in gains:
                output = merge_full_resolution(photo.gray, chroma * gain, shape, model.output_stride,
                                               colorizer.color_space)
                rows.append({"photo": name, "source": source_of(name), "temperature": temperature,
                             "undo_rebalancing": beta, "chroma_gain": gain, "prior_correction": correction,
                             "psnr": psnr_uint8(output, photo.rgb), "gray_psnr": gray_psnr,
                             "colorfulness": colorfulness(output), "cf_truth": cf_truth})
    return pd.DataFrame(rows)


def frontier(sweep: pd.DataFrame, by_source: bool = False, balanced: bool = False) -> pd.DataFrame:
    """Per decoding (and source): PSNR against gray (mean over photos) and colourfulness / ground truth.

    ``balanced``: each source weighs the same, however many photos it has: the per-source values averaged over
    sources (a decoding tuned on a pooled set follows its largest source; users bring other photos)."""
    if balanced and not by_source:
        per_source = frontier(sweep, by_source=True)
        grouped = per_source.groupby(level=list(DECODING))
        return pd.DataFrame({"photos": grouped["photos"].sum(), "psnr_vs_gray": grouped["psnr_vs_gray"].mean(),
                             "cf_ratio": grouped["cf_ratio"].mean()})
    keys = (["source"] if by_source else []) + list(DECODING)
    grouped = sweep.groupby(keys)
    return pd.DataFrame({
        "photos": grouped.size(),
        "psnr_vs_gray": grouped["psnr"].mean() - grouped["gray_psnr"].mean(),
        "cf_ratio": grouped["colorfulness"].mean() / grouped["cf_truth"].mean(),
    })


EQUAL_CF_LEVELS = (0.85, 0.9, 0.95)  # colourfulness / truth at which two networks' sweeps are compared


def psnr_at_colourfulness(table: pd.DataFrame, levels=EQUAL_CF_LEVELS) -> dict[float, float | None]:
    """PSNR against gray reachable at each colourfulness level: the Pareto frontier of the decodings (no other is
    both more colourful and higher in PSNR), linearly interpolated; None outside the colourfulness swept. Two
    networks, or two decoding families, compare on this, since each decoding only trades one axis for the other.
    ``table``: ``frontier(sweep)``."""
    points = table.sort_values("cf_ratio", ascending=False)
    best, pareto = float("-inf"), []
    for cf, psnr in zip(points["cf_ratio"], points["psnr_vs_gray"]):
        if psnr > best:  # beats every more colourful decoding
            pareto.append((cf, psnr))
            best = psnr
    cfs, psnrs = [c for c, _ in reversed(pareto)], [v for _, v in reversed(pareto)]
    return {level: float(np.interp(level, cfs, psnrs)) if cfs[0] <= level <= cfs[-1] else None for level in levels}


@dataclass(frozen=True)
class Choice:
    temperature: float
    undo_rebalancing: float
    chroma_gain: float
    prior_correction: float
    psnr_vs_gray: float
    cf_ratio: float
    meets_rule: bool  # False: no decoding reached min_cf, so the most colourful one was taken

    @property
    def decoding(self) -> dict[str, float]:
        return {field: getattr(self, field) for field in DECODING}

    def label(self) -> str:
        extra = "".join(f", {field.replace('_', ' ')} {getattr(self, field):g}"
                        for field, plain in (("undo_rebalancing", 0.0), ("chroma_gain", 1.0),
                                             ("prior_correction", 0.0))
                        if getattr(self, field) != plain)
        return f"T={self.temperature:g}{extra}"


def choose_decoding(table: pd.DataFrame, min_cf: float = 0.9) -> Choice:
    """The highest PSNR among decodings with colourfulness >= ``min_cf`` of ground truth (else the most
    colourful decoding). ``table``: ``frontier(sweep)``."""
    eligible = table[table["cf_ratio"] >= min_cf]
    meets = not eligible.empty
    key = eligible["psnr_vs_gray"].idxmax() if meets else table["cf_ratio"].idxmax()
    chosen = table.loc[key]
    return Choice(*(float(value) for value in key), float(chosen.psnr_vs_gray), float(chosen.cf_ratio), meets)


def plot_frontier(sweep: pd.DataFrame, path: str | Path, choice: Choice | None = None, min_cf: float = 0.9,
                  title: str = "", balanced: bool = True) -> Path:
    """PSNR against gray versus colourfulness / ground truth, each point a temperature: one line per source (at the
    chosen undo/gain/prior) and, for all photos, one line per (undo rebalancing, chroma gain, prior correction): where
    a model sits between dull-and-safe and vivid-and-wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = ("undo_rebalancing", "chroma_gain", "prior_correction")
    chosen_family = (tuple(getattr(choice, field) for field in family) if choice
                     else tuple(sweep[list(family)].iloc[0]))
    figure, axis = plt.subplots(figsize=(7, 4.6))
    by_source = frontier(sweep, by_source=True).xs(chosen_family, level=family)
    for source, table in by_source.groupby(level="source"):
        table = table.droplevel("source")
        axis.plot(table["cf_ratio"], table["psnr_vs_gray"], "o-", ms=3, lw=1, alpha=0.6,
                  label=f"{source} ({int(table['photos'].iloc[0])})")
    overall = frontier(sweep, balanced=balanced)
    families = overall.groupby(level=list(family))
    for (beta, gain, correction), table in families:
        table = table.droplevel(list(family))
        chosen = (beta, gain, correction) == chosen_family
        detail = f" (undo {beta:g}, gain {gain:g}, prior {correction:g})" if len(families) > 1 else ""
        label = ("all sources, balanced" if balanced else "all photos") + detail
        axis.plot(table["cf_ratio"], table["psnr_vs_gray"], "s-", color="black" if chosen else "gray",
                  lw=2 if chosen else 1, ms=4 if chosen else 2, label=label if chosen else None)
        if chosen:
            for temperature, row in table.iterrows():
                axis.annotate(f"T={temperature:g}", (row.cf_ratio, row.psnr_vs_gray), fontsize=7,
                              xytext=(4, 4), textcoords="offset points")
    if len(families) > 1:
        axis.plot([], [], "s-", color="gray", lw=1, ms=2, label="all photos, other undo / gain / prior")
    if choice is not None:
        axis.plot([choice.cf_ratio], [choice.psnr_vs_gray], "*", color="red", ms=14, label=f"chosen {choice.label()}")
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
