"""Ship a source-paper recipe's run: weights/<recipe>.safetensors and its model card weights/<recipe>.md.

    python scripts/ship_recipe.py RUN_DIR --val ../shared/data/val --holdout ../shared/data/train [--precision int8]

Takes the run's ``last.safetensors`` (or ``--weights``, e.g. a GAN's ``interval-NNN.safetensors`` chosen by a stated
rule; BatchNorm statistics re-estimated before it was written), names it after its
recipe, stores it in fp16 or int8 (int8 only if it changes PSNR on the first ``--int8-photos`` validation photos by
less than 0.05 dB, measured here and written into the card), evaluates it on ``--val`` against the gray baseline and
writes the card: the paper's reported numbers beside ours, the budget, and every deviation with its reason.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from colorizer import Colorizer  # noqa: E402
from colorizer.data import list_images, named_held_out  # noqa: E402
from colorizer.evaluate import evaluate_folder, format_summary, per_source  # noqa: E402
from colorizer.inference import RGB_MAX_SHORT_SIDE  # noqa: E402
from colorizer.recipes import PAPER_ERRORS, get_recipe  # noqa: E402
from colorizer.weights import DECODING_FIELDS, WEIGHTS_DIR, load_weights, read_info, save_weights  # noqa: E402

TERMS = ("Trained on `../shared/data/train` (ImageNet sample images, BSDS500, NIPS 2017 dev photos from Flickr, OSIE "
         "stimuli): research and non-commercial use only, as those photos' terms require; these weights inherit them.")
MAX_INT8_LOSS_DB = 0.05
def drawn_at(colorizer: Colorizer) -> str:
    """The size the network saw: an RGB head draws each photo at its own size (Colorizer.rgb_size)."""
    if getattr(colorizer.model.config, "head", None) == "rgb" and not colorizer.size_given:
        return f"each drawn at its own size (short side up to {RGB_MAX_SHORT_SIDE})"
    return f"working size {colorizer.size}"


def optimiser_row(training: dict) -> str:
    """The optimiser as the record has it, saying why an encoder rate is missing."""
    row = f"Adam lr {training.get('lr')}, {json.dumps(training.get('optimizer'))}"
    if training.get("imagenet_encoder_loaded") is False:
        row += " (no ImageNet file loaded: the random encoder trained at lr with the rest)"
    return row


def paper_error_rows(recipe, model_row, gray_row) -> str:
    """Markdown table rows: RGB MSE always, plus the error each paper reports, measured its way."""
    keys = ["MSE"] + [key for key in PAPER_ERRORS if key != "MSE" and key in recipe.reported]
    rows = []
    for key in keys:
        column, label = PAPER_ERRORS[key]
        rows.append(f"| {label} | {model_row[column]:.4g} | {gray_row[column]:.4g} | "
                    f"{recipe.reported.get(key, 'not reported')} |")
    return "\n".join(rows)


def _psnr(colorizer: Colorizer, paths: list[Path]) -> float:
    evaluation, _ = evaluate_folder(colorizer, paths, progress=False)
    return float(evaluation.summary.loc["model", "psnr"])


def architecture_config(config: dict) -> dict:
    """The config as the card shows it: decoding fields only where they act (classification heads decode logits)."""
    if config.get("head") == "classify":
        return config
    return {k: v for k, v in config.items() if k not in (*DECODING_FIELDS, "prior_shift")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the recipe's run directory")
    parser.add_argument("--val", required=True, help="validation photos (../shared/data/val)")
    parser.add_argument("--holdout", default=None, metavar="TRAIN",
                        help="also report the photos training held out of this folder, per source")
    parser.add_argument("--precision", choices=["fp16", "int8"], default="fp16")
    parser.add_argument("--int8-photos", type=int, default=20)
    parser.add_argument("--weights", default=None,
                        help="the run's weights file to ship (default: the recipe's checkpoint, last.safetensors or "
                             "best.safetensors; interval-NNN.safetensors for a checkpoint chosen by a stated rule, "
                             "given in --notes)")
    parser.add_argument("--notes", default="", help="Markdown added to the card (what is still short, ...)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    run = Path(args.run)
    weights = args.weights or f"{get_recipe(read_info(run / 'last.safetensors').training['recipe']).checkpoint}" \
                              ".safetensors"
    model, info = load_weights(run / weights)
    recipe = get_recipe(info.training["recipe"])
    info.description = recipe.system
    target = WEIGHTS_DIR / f"{recipe.name}.safetensors"
    precision, precision_note = "fp16", "fp16"
    if args.precision == "int8":
        sample = list_images(args.val)[: args.int8_photos]
        with tempfile.TemporaryDirectory() as folder:
            half = save_weights(model, Path(folder) / "half.safetensors", info, precision="fp16")
            quant = save_weights(model, Path(folder) / "int8.safetensors", info, precision="int8")
            loss = _psnr(Colorizer.from_file(half, device="cpu"), sample) - \
                _psnr(Colorizer.from_file(quant, device="cpu"), sample)
        if abs(loss) <= MAX_INT8_LOSS_DB:
            precision = "int8"
            precision_note = (f"int8 (per-output-channel weights, fp16 scales): PSNR {-loss:+.3f} dB against fp16 on "
                              f"the first {len(sample)} validation photos")
        else:
            print(f"int8 changes PSNR by {-loss:+.3f} dB on {len(sample)} photos: shipping fp16")
    save_weights(model, target, info, precision=precision)
    info = read_info(target)
    colorizer = Colorizer(target, device="cpu")
    evaluation, _ = evaluate_folder(colorizer, args.val, progress=False)
    summary = evaluation.summary
    broad = ""
    if args.holdout:
        import pandas as pd

        held, _ = evaluate_folder(colorizer, named_held_out(args.holdout), progress=False)
        table = per_source(pd.concat([held.per_photo, evaluation.per_photo], ignore_index=True))
        rows = "\n".join(f"| {source} | {int(row.photos)} | {row.psnr_vs_gray:+.2f} dB | {row.cf_ratio:.3f} | "
                         f"{row.ciede2000:.2f} |" for source, row in table.iterrows())
        broad = f"""## Per source, with the photos training held out ({len(held.per_photo)} of `{args.holdout}`, never trained on)

| source | photos | PSNR vs gray | colourfulness / ground truth | CIEDE2000 |
|---|---|---|---|---|
{rows}
"""
    model_row, gray_row = summary.loc["model"], summary.loc["gray"]
    training = info.training
    reported = "; ".join(f"{k} {v}" for k, v in recipe.reported.items()) or "none"
    deviations = "\n".join(f"- {d}" for d in recipe.deviations)
    history = run / "log.csv"
    curve = ""
    if history.exists():
        import pandas as pd

        log = pd.read_csv(history)
        log = log[log.images_seen <= info.training.get("images_seen", log.images_seen.max())]  # up to the shipped one
        last = log.iloc[-1]
        first = log.iloc[0]
        curve = (f"Validation curve (91 held-out training photos, 128 px centre crops): loss {first.val_loss:.4f} after "
                 f"{int(first.images_seen):,} crops -> {last.val_loss:.4f} after {int(last.images_seen):,}; chroma "
                 f"RMSE {first.val_chroma_rmse:.4f} -> {last.val_chroma_rmse:.4f}. The run's `log.csv` and "
                 f"`curves.png` stay in the run directory (not committed).")
    card = f"""# Model card: `{recipe.name}`

{recipe.system}. Paper: {recipe.paper} (`../shared/papers/`).

| | |
|---|---|
| architecture | `{info.architecture}` (config: `{json.dumps(architecture_config(info.config))}`) |
| weights | `{target.name}`, {precision_note}, {target.stat().st_size / 1e6:.1f} MB |
| loss | `{training.get('loss')}` (the paper's) |
| optimiser | {optimiser_row(training)} |
| augmentation | {json.dumps(training.get('augment'))} |
| budget | {training.get('images_seen'):,} crops of {training.get('crop')} px, batch {training.get('batch')}, {training.get('epochs')} checkpoint intervals, {training.get('minutes')} min on 2 CPU cores (shared with development work) |
| BatchNorm | running statistics re-estimated over {training.get('bn_recalibrated_on')} training crops before the export |
| training data | {training.get('train_photos')} photos of `{training.get('data')}` |
| recipe | `python -m colorizer train --recipe {recipe.name} --data ../shared/data/train --out RUN` |

## Numbers on `../shared/data/val` ({len(evaluation.per_photo)} photos, {drawn_at(colorizer)}, against the gray baseline)

```
{format_summary(summary, len(evaluation.per_photo))}
```

| | this model | gray baseline | the paper reported (its own data and scale) |
|---|---|---|---|
| PSNR (dB) | {model_row.psnr:.2f} ({model_row.psnr - gray_row.psnr:+.2f}) | {gray_row.psnr:.2f} | {recipe.reported.get('PSNR', 'not reported')} |
| SSIM | {model_row.ssim:.4f} | {gray_row.ssim:.4f} | {recipe.reported.get('SSIM', 'not reported')} |
{paper_error_rows(recipe, model_row, gray_row)}
| colourfulness / ground truth | {model_row.cf_ratio:.3f} | 0 | not reported |

The paper's numbers, in its own words: {reported}. They were measured on the paper's data (and, for MSE, on the
paper's scale where it says one), so they compare in kind, not digit for digit.

{broad}
{curve}

## Where this differs from the paper, and why

{deviations}

{args.notes}

## Terms

{TERMS}

Card written by `scripts/ship_recipe.py` on {datetime.date.today().isoformat()}.
"""
    (WEIGHTS_DIR / f"{recipe.name}.md").write_text(card)
    print(card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
