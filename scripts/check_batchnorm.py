"""Do stale BatchNorm statistics explain the old comparison's -10 dB rows? Brown's VGG-19 U-Net (blur loss) trained
24 steps from random init, evaluated on 20 validation photos with the running statistics as trained, then again
after re-estimating them with ``update_bn`` over 256 training crops.

    python scripts/check_batchnorm.py --data ../shared/data/train --val ../shared/data/val --out runs/checks
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from colorizer import Colorizer, recipes  # noqa: E402
from colorizer.data import list_images  # noqa: E402
from colorizer.evaluate import evaluate_folder  # noqa: E402
from colorizer.train import Trainer, recalibrate_batchnorm  # noqa: E402
from colorizer.weights import WeightsInfo, save_weights  # noqa: E402


def score(model, path: Path, photos: list[Path]) -> tuple[float, float]:
    """(PSNR - gray in dB, colourfulness / ground truth) of ``model`` on ``photos``."""
    save_weights(model, path, WeightsInfo("vgg19_unet", model.config.to_dict()), precision="fp32")
    evaluation, _ = evaluate_folder(Colorizer.from_file(path, device="cpu"), photos, progress=False)
    summary = evaluation.summary
    return round(summary.loc["model", "psnr"] - summary.loc["gray", "psnr"], 2), round(summary.loc["model", "cf_ratio"], 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--out", default="runs/checks")
    args = parser.parse_args()
    out = Path(args.out)
    torch.manual_seed(0)
    config = recipes.train_config("brown-vgg19", data=args.data, out=str(out / "bn"), steps_per_epoch=24, epochs=1,
                                  bn_crops=0, cache_dir=str(out / "cache"), progress=False)
    trainer = Trainer(config)
    started = time.time()
    trainer.fit()
    print(f"trained {trainer.images_seen} crops in {time.time() - started:.0f} s", flush=True)
    photos = list_images(args.val)[:20]
    print("running statistics as trained:", score(copy.deepcopy(trainer.model), out / "stale.safetensors", photos))
    trainer.config.bn_crops = 256
    recalibrate_batchnorm(trainer.model, trainer.bn_batches())
    print("after update_bn over 256 crops:", score(trainer.model, out / "recalibrated.safetensors", photos))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
