"""Trains the source papers' recipes one after another, then the project's own default-model runs, each resumable,
each to its budget in crops seen.

Run it in the background and re-run the same command after any interruption: finished recipes (``done.json``) and
shipped ones (``weights/<recipe>.safetensors``) are skipped, as is a run whose starting file is missing, and an
unfinished one resumes from its ``last.pt`` exactly. Each recipe runs in its own process, so code changes made
while an earlier recipe trains are picked up by the later ones.

    nohup nice -n 10 python scripts/train_queue.py --data ../shared/data/train --runs ~/runs/recipes \\
        > ~/runs/recipes/queue.log 2>&1 &
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from colorizer.recipes import list_recipes  # noqa: E402

# The default model's runs (issue 13), after the papers: flags for `python -m colorizer train`. Cosine decay to
# zero, because fine-tuning at a flat 3e-4 only moved the model along its PSNR-colourfulness frontier.
# First a second try at a paper's system whose first run failed: organic-resnet18's adversarial phase (the paper's
# lambda 1, no label smoothing, random-init encoder) turned every photo orange (-5.4 dB, colourfulness 1.5). It
# restarts that phase from the run's L1 pre-trained generator with one-sided label smoothing (as organic-cgan),
# keeping every interval so a checkpoint can be chosen on metrics afterwards. "{runs}" is the --runs folder.
# organic-cgan-more: organic-cgan's run continued exactly (its last.pt copied into the new folder) for 8 more
# intervals with every interval kept: it ended 0.09 dB outside its bound while its validation L1 swung from interval
# to interval, so a checkpoint is chosen on the held-out photos by the rule organic-resnet18's retry used.
# Tried and removed (tenth session): organic-resnet18's retry again at a quarter of the paper's rate (G and D 5e-5,
# otherwise as organic-resnet18-smooth): held-out PSNR -4.1, -3.2, -4.1, -3.7, -6.2 dB over intervals 1-5
# (colourfulness 1.04-1.79), worse than the shipped -1.67; stopped after 5 of 8 intervals.
PROJECT_RUNS = {
    "organic-cgan-more": ["--recipe", "organic-cgan", "--budget-images", "61440", "--keep-intervals"],
    "organic-resnet18-smooth": ["--recipe", "organic-resnet18", "--init", "{runs}/organic-resnet18/best.safetensors",
                                "--gan-pretrain-epochs", "0", "--gan-real-label", "0.9", "--budget-images", "35840",
                                "--keep-intervals"],
    "balanced-cosine": ["--init", "weights/balanced.safetensors", "--lr", "3e-4", "--schedule", "cosine",
                        "--budget-images", "150000", "--steps-per-epoch", "80"],
    # width 40, not 48: 48's network alone is only 5.1x faster than ECCV16's at 256 px (111 vs 571 ms), leaving no
    # room for the decoding and merging both pay; 40 is 7.2x (79 ms), 32 (shipped) 9.5x. The shipped width-32
    # network's budget (131,040 crops), so the two differ in width and schedule only, and the run fits one session
    # (44 min on a quiet 2-core EPYC): a 260,000-crop run was lost at 60% when a session's machine did not keep ~/runs.
    "context-unet-w40": ["--model", "context_unet", "--model-config", '{"width": 40}', "--lr", "1e-3",
                         "--schedule", "cosine", "--budget-images", "131040", "--steps-per-epoch", "80"],
    # Its control: the shipped width from scratch on the same schedule and budget, so that what width 40 changes is
    # told apart from what the schedule changes (the shipped network halved its rate on validation plateaus).
    "context-unet-w32-cosine": ["--model", "context_unet", "--model-config", '{"width": 32}', "--lr", "1e-3",
                                "--schedule", "cosine", "--budget-images", "131040", "--steps-per-epoch", "80"],
    # Width 40 on the shipped network's own recipe (plateau halving, default steps per epoch, 131,040 crops). Measured
    # in the twelfth session on final weights: neither width-40 run beats width 32 on the cosine schedule, whose final
    # weights are ~0.1 dB ahead of the shipped network (docs/default_model.md).
    "context-unet-w40-plateau": ["--model", "context_unet", "--model-config", '{"width": 40}', "--lr", "1e-3",
                                 "--schedule", "plateau", "--budget-images", "131040"],
}
# The width-32 cosine recipe again with another seed: how far two runs of one recipe land apart, before either ships.
PROJECT_RUNS["context-unet-w32-cosine-seed1"] = [*PROJECT_RUNS["context-unet-w32-cosine"], "--seed", "1"]
PROJECT_RUNS["context-unet-w32-cosine-seed2"] = [*PROJECT_RUNS["context-unet-w32-cosine"], "--seed", "2"]
# Twice the budget from scratch, the rate decaying to zero over all of it (~60 min quiet): whether more hours pay on
# this schedule, where they did not at a flat rate or as a fine-tune.
PROJECT_RUNS["context-unet-w32-cosine-2x"] = ["--model", "context_unet", "--model-config", '{"width": 32}',
                                             "--lr", "1e-3", "--schedule", "cosine", "--budget-images", "262080",
                                             "--steps-per-epoch", "80"]

# The pretrained-encoder default model (issue 26), first in the queue: two pilots at equal budget decide frozen vs
# fine-tuned encoder (measured, not assumed), then the full run of the winner. Measured (fourteenth session, 12,800
# crops each): fine-tuned at 1e-4 ended at validation loss 3.975 against frozen 4.010, and its source-balanced
# frontier on the broad validation was ahead at every colourfulness (-0.006 / -0.615 / -0.710 dB at 0.85 / 0.90 /
# 0.95 against -0.022 / -0.677 / -0.791): the full run fine-tunes. Started at 112,000 crops; cut to 96,000 at epoch 17
# (the cosine rate stepped from 0.91 to 0.88 of its peak) so the run ended inside the session.
_LITE = ["--model", "lite_unet", "--lr", "1e-3", "--schedule", "cosine", "--steps-per-epoch", "40"]
PROJECT_RUNS["lite0-pilot-frozen"] = [*_LITE, "--freeze-encoder", "--budget-images", "12800"]
PROJECT_RUNS["lite0-pilot-finetune"] = [*_LITE, "--encoder-lr", "1e-4", "--budget-images", "12800"]
PROJECT_RUNS["lite0-unet"] = [*_LITE, "--encoder-lr", "1e-4", "--budget-images", "96000"]
# lite0-unet overfits: training loss fell to 3.14 while validation loss was lowest at epoch 31 of 75 (3.81, ending at
# 3.96), and its best-loss weights read +0.21 dB at colourfulness 0.91 against +0.08 for its last (source-balanced
# broad validation). Less fitting, both ways at once: half the crops (the cosine rate reaches zero near the old
# minimum) and the encoder at 3e-5.
PROJECT_RUNS["lite0-unet-short"] = [*_LITE, "--encoder-lr", "3e-5", "--budget-images", "48000"]
# Measured (fifteenth session, 51 min with other work sharing the cores): lower validation loss (3.845) but worse on
# the source-balanced broad validation: -0.056 dB at colourfulness 0.915 (last), -0.058 at 0.905 (best). Next, the
# other suspect: the encoder's global vector sees a 128-px crop in training and the whole photo at inference. Crops
# of 192 px (from 192-256 px of the 256-px photo), the encoder at lite0-unet's 1e-4, 48,000 crops (each 2.25x dearer).
PROJECT_RUNS["lite0-unet-crop192"] = [*_LITE, "--encoder-lr", "1e-4", "--size", "192", "--max-crop", "256",
                                      "--budget-images", "48000"]
# Measured (sixteenth session, 131 min): clearly worse, -0.215 dB (best) and -0.251 dB (last) at colourfulness
# 0.90-0.915 against the shipped +0.080 (docs/default_model.md).

# Seventeenth session: the mean of lite0-unet's best-loss and last weights (scripts/soup.py) reads +0.296 dB at
# colourfulness 0.900, against +0.080 for the last alone. Stochastic weight averaging (Izmailov et al. 2018) from
# there: 20 epochs at a constant tenth of the run's peak rates, every epoch's weights kept; the candidate fixed before
# training is the uniform soup of all 20 (BatchNorm re-estimated). A fresh crop stream (seed 1; the held-out split
# stays seed 0's).
PROJECT_RUNS["lite0-unet-swa"] = ["--model", "lite_unet", "--init", "{runs}/lite0-unet/soup-best-last.safetensors",
                                  "--lr", "1e-4", "--encoder-lr", "1e-5", "--schedule", "none",
                                  "--steps-per-epoch", "40", "--budget-images", "25600", "--keep-intervals",
                                  "--seed", "1"]
# Measured (seventeenth session, 52 min shared): +0.234 dB at colourfulness 0.918 by the rule, against the soup's
# +0.296 at 0.900: not shipped; between grid points its frontier sits ~0.1 dB higher (docs/default_model.md).

# Nineteenth session: OSIE (people, indoor) loses PSNR because clothes of unknown colour come out red or orange: the
# rebalanced classifier commits to one warm mode where the truth is any colour. Less rebalancing (Zhang's lambda 0.75
# instead of 0.5), everything else lite0-unet's, seed 0; the candidate fixed before training is again the soup of
# its best-loss and last weights (docs/default_model.md, "Nineteenth session").
PROJECT_RUNS["lite0-unet-mix75"] = [*PROJECT_RUNS["lite0-unet"], "--rebalance-mix", "0.75"]

# Measured (nineteenth session, 74 min): its soup +0.165 dB at colourfulness 0.910 (T 0.45, gain 1.2) against the
# shipped +0.296 at 0.900, OSIE slightly worse: not shipped. Next, a larger ImageNet encoder: Lite1 (76.7% top-1
# against Lite0's 75.1%, +2 ms at 256 px), everything else lite0-unet's; same candidate and rule.
PROJECT_RUNS["lite1-unet"] = [*PROJECT_RUNS["lite0-unet"], "--model-config", '{"encoder": "lite1"}']

# Manipal (source paper 003) with the paper's kind of class vector: the recipe now takes the 1000 class probabilities
# of the pip-installed EfficientNet-Lite0 ImageNet classifier in place of the context vector the shipped file uses
# (issue 28). Its own folder, so the shipped manipal-fusion does not skip it; shipped only if it is within the bound.
PROJECT_RUNS["manipal-fusion-lite0"] = ["--recipe", "manipal-fusion"]

# Files a project run starts from: without them it would silently train something else from scratch, so it is skipped
# with a message instead. organic-cgan-more continues organic-cgan's run: copy that run's last.pt into its folder.
PREREQUISITES = {
    "organic-cgan-more": "{runs}/organic-cgan-more/last.pt",
    "organic-resnet18-smooth": "{runs}/organic-resnet18/best.safetensors",
    "lite0-unet-swa": "{runs}/lite0-unet/soup-best-last.safetensors",
}


def missing_prerequisite(name: str, runs: Path) -> Path | None:
    """The file ``name`` starts from when it is not there yet (None when present, not needed, or when the run has
    its own ``last.pt`` to resume from)."""
    needed = PREREQUISITES.get(name)
    if needed is None or (runs / name / "last.pt").exists():
        return None
    path = Path(needed.replace("{runs}", str(runs)))
    return None if path.exists() else path


def train_command(name: str, data: str, out: Path, cache: Path, extra: list[str]) -> list[str]:
    what = [flag.replace("{runs}", str(out.parent)) for flag in PROJECT_RUNS[name]] if name in PROJECT_RUNS \
        else ["--recipe", name]
    return [sys.executable, "-m", "colorizer", "train", *what, "--data", data, "--out", str(out),
            "--cache-dir", str(cache), "--resume", "--no-progress", *extra]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder tree of training photos")
    parser.add_argument("--runs", required=True, help="one run directory per recipe is made here")
    parser.add_argument("--only", default=None, help="comma-separated recipe or project-run names, in this order "
                                                    "(default: every recipe, then every project run)")
    parser.add_argument("--retrain-shipped", action="store_true",
                        help="also train recipes whose weights already ship (default: skip them)")
    parser.add_argument("--extra", default="", help="extra flags for every `train` call, e.g. '--budget-images 80000'")
    args = parser.parse_args()
    runs = Path(args.runs).expanduser()
    runs.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else [*list_recipes(), *PROJECT_RUNS]
    for name in names:
        out = runs / name
        if (out / "done.json").exists() and not args.extra:
            print(f"{time.strftime('%F %T')} {name}: done, skipped", flush=True)
            continue
        if (ROOT / "weights" / f"{name}.safetensors").exists() and not args.retrain_shipped:
            print(f"{time.strftime('%F %T')} {name}: shipped in weights/, skipped", flush=True)
            continue
        missing = missing_prerequisite(name, runs)
        if missing is not None:
            print(f"{time.strftime('%F %T')} {name}: skipped, it starts from {missing}, which is not there",
                  flush=True)
            continue
        out.mkdir(parents=True, exist_ok=True)
        command = train_command(name, args.data, out, runs / "cache", args.extra.split())
        print(f"{time.strftime('%F %T')} {name}: {' '.join(command)}", flush=True)
        with open(out / "train.log", "a") as log:
            code = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f"{time.strftime('%F %T')} {name}: exit {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
