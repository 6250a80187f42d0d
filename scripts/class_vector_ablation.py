"""Does a global-vector model (Manipal's fusion) use its class vector? Its own photo's vector against another's.

    python scripts/class_vector_ablation.py weights/manipal-fusion.safetensors --val ../shared/data/val \\
        --holdout ../shared/data/train

Each photo (256 px) is colorized twice: with the global vector of the photo itself, and with the vector of the photo
half the list away (a fixed derangement, so every vector is used once as the wrong one). The PSNR difference says
whether the vector is read at all (0 when ignored) and whether the right photo's vector helps (positive). Reported
pooled over photos with a paired t-test (scipy) and per source, with the source-balanced mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from colorizer.color import denormalize_chroma, lab_to_rgb, normalize_l, rgb_to_lab  # noqa: E402
from colorizer.data import named_held_out, named_photos  # noqa: E402
from colorizer.weights import load_weights  # noqa: E402


def psnr(model, lab: torch.Tensor, vector: torch.Tensor) -> float:
    chroma = denormalize_chroma(model(normalize_l(lab[:, :1]), global_vector=vector), model.config.color_space)
    rgb, truth = lab_to_rgb(torch.cat([lab[:, :1], chroma], 1)), lab_to_rgb(lab)
    return float(10 * torch.log10(1 / ((rgb - truth) ** 2).mean()))


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--val", required=True)
    parser.add_argument("--holdout", default=None, metavar="TRAIN")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, _ = load_weights(args.weights)
    photos = (named_held_out(args.holdout) if args.holdout else []) + named_photos(args.val)
    labs = [rgb_to_lab(torch.from_numpy(np.array(Image.open(path).convert("RGB").resize((args.size, args.size))))
                       .permute(2, 0, 1)[None].float() / 255) for _, path in photos]
    sources = np.array([name.split("/")[0] for name, _ in photos])
    vectors = [model.global_features(normalize_l(lab[:, :1])) for lab in labs]
    n = len(labs)
    own = np.array([psnr(model, labs[i], vectors[i]) for i in range(n)])
    other = np.array([psnr(model, labs[i], vectors[(i + n // 2) % n]) for i in range(n)])
    gain = own - other
    per_source = {source: float(gain[sources == source].mean()) for source in sorted(set(sources))}
    test = stats.ttest_rel(own, other)
    print(f"{n} photos: own vector - another photo's, PSNR {gain.mean():+.3f} dB pooled (paired t p = "
          f"{test.pvalue:.3g}), {np.mean(list(per_source.values())):+.3f} dB source-balanced; "
          f"mean |difference| {np.abs(gain).mean():.3f} dB")
    for source, value in per_source.items():
        print(f"  {source:16s} {int((sources == source).sum()):3d} photos  {value:+.3f} dB")


if __name__ == "__main__":
    main()
