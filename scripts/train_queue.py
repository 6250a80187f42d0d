"""Trains the source papers' recipes one after another, each resumable, each to its budget in crops seen.

Run it in the background and re-run the same command after any interruption: finished recipes (``done.json``) and
shipped ones (``weights/<recipe>.safetensors``) are skipped and an unfinished one resumes from its ``last.pt`` exactly. Each recipe runs in its own process, so code
changes made while an earlier recipe trains are picked up by the later ones.

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder tree of training photos")
    parser.add_argument("--runs", required=True, help="one run directory per recipe is made here")
    parser.add_argument("--only", default=None, help="comma-separated recipe names, in this order (default: all)")
    parser.add_argument("--retrain-shipped", action="store_true",
                        help="also train recipes whose weights already ship (default: skip them)")
    parser.add_argument("--extra", default="", help="extra flags for every `train` call, e.g. '--budget-images 80000'")
    args = parser.parse_args()
    runs = Path(args.runs).expanduser()
    runs.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list_recipes()
    for name in names:
        out = runs / name
        if (out / "done.json").exists() and not args.extra:
            print(f"{time.strftime('%F %T')} {name}: done, skipped", flush=True)
            continue
        if (ROOT / "weights" / f"{name}.safetensors").exists() and not args.retrain_shipped:
            print(f"{time.strftime('%F %T')} {name}: shipped in weights/, skipped", flush=True)
            continue
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "colorizer", "train", "--recipe", name, "--data", args.data,
                   "--out", str(out), "--cache-dir", str(runs / "cache"), "--resume", "--no-progress",
                   *args.extra.split()]
        print(f"{time.strftime('%F %T')} {name}: {' '.join(command)}", flush=True)
        with open(out / "train.log", "a") as log:
            code = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f"{time.strftime('%F %T')} {name}: exit {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
