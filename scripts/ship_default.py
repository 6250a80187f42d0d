"""Choose a run's decodings on the source-balanced broad validation and ship it as the default model.

Two knobs only, the annealed-mean temperature and a chroma gain, swept over the broad validation (``val`` plus the
photos training holds out of every training source), each source weighted equally (``tuning.frontier(balanced=
True)``). Rules, fixed before looking: ``balanced`` takes the highest PSNR with colourfulness >= 0.90 of ground
truth; ``vivid`` the highest PSNR with colourfulness >= 1.0 (as colourful as the real photos). ``balanced`` is
written as weights/balanced.safetensors with its decoding inside (a preset of that name is removed: it would
override it); ``vivid`` as a preset over the same bytes.

Usage: python scripts/ship_default.py RUN/last.safetensors --val ../shared/data/val --train ../shared/data/train \\
           --out /root/runs/eval/ship
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from colorizer import Colorizer  # noqa: E402
from colorizer.data import named_held_out, named_photos  # noqa: E402
from colorizer.tuning import choose_decoding, decoding_sweep, frontier, plot_frontier  # noqa: E402
from colorizer.weights import WEIGHTS_DIR, load_weights, save_weights  # noqa: E402

# Eighteenth session: 0.2 and 1.05 added, fixed before the sweeps that read them (docs/default_model.md).
TEMPERATURES = (0.2, 0.25, 0.3, 0.38, 0.45, 0.55, 0.7)
GAINS = (1.0, 1.05, 1.1, 1.2, 1.3, 1.45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="the run's .safetensors file")
    parser.add_argument("--val", required=True)
    parser.add_argument("--train", required=True, help="training folder: its held-out photos join the validation")
    parser.add_argument("--out", required=True, help="folder for the sweep CSV, the frontier plot and a summary")
    parser.add_argument("--ship", action="store_true", help="write weights/ (default: only report the choice)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    colorizer = Colorizer.from_file(args.weights, device="cpu")
    photos = named_held_out(args.train) + named_photos(args.val)
    sweep = decoding_sweep(colorizer, photos, TEMPERATURES, (0.0,), GAINS, (0.0,))
    sweep.to_csv(out / "sweep.csv", index=False)
    table = frontier(sweep, balanced=True)
    balanced, vivid = choose_decoding(table, 0.90), choose_decoding(table, 1.0)
    plot_frontier(sweep, out / "frontier.png", balanced, 0.90, title="default model, source-balanced")
    per_source = frontier(sweep, by_source=True)
    summary = {"photos": int(sweep["photo"].nunique()), "sources": int(sweep["source"].nunique())}
    for label, choice in (("balanced", balanced), ("vivid", vivid)):
        key = tuple(choice.decoding.values())
        rows = per_source.xs(key, level=list(choice.decoding))
        summary[label] = {"decoding": choice.decoding, "meets_rule": choice.meets_rule,
                          "psnr_vs_gray": round(choice.psnr_vs_gray, 3), "cf_ratio": round(choice.cf_ratio, 4),
                          "per_source": {source: {"photos": int(r.photos), "psnr_vs_gray": round(r.psnr_vs_gray, 3),
                                                  "cf_ratio": round(r.cf_ratio, 3)} for source, r in rows.iterrows()}}
        print(f"{label}: {choice.label()} -> PSNR {choice.psnr_vs_gray:+.3f} dB vs gray, colourfulness "
              f"{choice.cf_ratio:.4f} (source-balanced){'' if choice.meets_rule else ' (rule not met)'}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.ship:
        return
    model, info = load_weights(args.weights)
    model.config.temperature = balanced.temperature
    model.config.chroma_gain = balanced.chroma_gain
    info.config = model.config.to_dict()
    parts = len(info.training.get("soup_of", []))
    soup = f" (the mean of {parts} checkpoints of one run)" if parts else ""
    info.description = (f"Balanced colors: ImageNet-pretrained EfficientNet-Lite0 encoder, U-Net decoder{soup}, "
                        f"rebalanced classification; annealed mean T={balanced.temperature:g}, "
                        f"chroma x{balanced.chroma_gain:g}")
    info.metrics = {"broad_validation_source_balanced": summary["balanced"]}
    info.training = {**info.training, "data": "../shared/data/train"}  # never an absolute path in a shipped file
    save_weights(model, WEIGHTS_DIR / "balanced.safetensors", info, half=True)
    (WEIGHTS_DIR / "balanced.preset.json").unlink(missing_ok=True)
    preset = {"weights": "balanced.safetensors", "temperature": vivid.temperature, "undo_rebalancing": 0.0,
              "chroma_gain": vivid.chroma_gain,
              "description": f"Vivid colors: the balanced network decoded at T={vivid.temperature:g}, chroma "
                             f"x{vivid.chroma_gain:g} (as colourful as real photos)",
              "metrics": {"broad_validation_source_balanced": summary["vivid"]}}
    (WEIGHTS_DIR / "vivid.preset.json").write_text(json.dumps(preset, indent=2) + "\n")
    print(f"shipped weights/balanced.safetensors and weights/vivid.preset.json")


if __name__ == "__main__":
    main()
