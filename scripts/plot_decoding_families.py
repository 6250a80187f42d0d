"""PSNR against colourfulness of decoding families, one panel per photo set, from `tune --out` CSVs.

Each line is one (undo rebalancing, chroma gain) family over temperature, or one (undo rebalancing, temperature)
family over chroma gain when several gains were swept: whether a family sits above the temperature-only frontier on
held-out training photos and on val separately is what tells a real gain from one fitted to the photos.

    python -m colorizer tune ../shared/data/val --holdout ../shared/data/train --temperatures 0.3,0.38,0.5 \
        --undo-rebalancing 0,0.25,0.5 --gains 1,1.1,1.2,1.35,1.5,1.7,1.9 --out sweep.csv
    python scripts/plot_decoding_families.py sweep.csv --out families.png
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from colorizer.tuning import frontier  # noqa: E402

VAL_SOURCES = ("sunhays80", "mcmaster")  # ../shared/data/val; every other source is a held-out training photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", help="CSV files written by `python -m colorizer tune --out`")
    parser.add_argument("--min-cf", type=float, default=0.9)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = pd.concat([pd.read_csv(path) for path in args.sweeps], ignore_index=True)
    held = ~sweep["source"].isin(VAL_SOURCES)
    sets = [("held-out training photos", sweep[held]), ("val", sweep[~held]), ("all", sweep)]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=False)
    colours = {0.0: "black", 0.25: "tab:blue", 0.5: "tab:orange"}
    for axis, (title, photos) in zip(axes, sets):
        table = frontier(photos).reset_index()
        for (beta, temperature), family in table.groupby(["undo_rebalancing", "temperature"]):
            if beta == 0:
                continue
            family = family.sort_values("chroma_gain")
            axis.plot(family.cf_ratio, family.psnr_vs_gray, "o-", ms=3, lw=1, color=colours.get(beta, "gray"),
                      alpha=0.4 + 0.6 * (temperature - 0.3) / 0.2 if 0.3 <= temperature <= 0.5 else 0.5,
                      label=f"undo {beta:g}, T={temperature:g}, gain varies")
        plain = table[(table.undo_rebalancing == 0) & (table.chroma_gain == 1)].sort_values("temperature")
        axis.plot(plain.cf_ratio, plain.psnr_vs_gray, "s-", color="black", lw=2, ms=4, label="temperature only")
        for row in plain.itertuples():
            axis.annotate(f"T={row.temperature:g}", (row.cf_ratio, row.psnr_vs_gray), fontsize=7, xytext=(4, 4),
                          textcoords="offset points")
        axis.axhline(0, color="gray", lw=0.8)
        axis.axvline(args.min_cf, color="gray", lw=0.8, ls="--")
        axis.set_title(f"{title} ({photos['photo'].nunique()} photos)", fontsize=10)
        axis.set_xlabel("colourfulness / ground truth")
        axis.set_xlim(0.7, 1.1)
    axes[0].set_ylabel("PSNR - gray baseline (dB)")
    axes[-1].legend(fontsize=6, loc="lower left")
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
