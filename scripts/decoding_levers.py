"""Decoding levers of a classification model, measured on the broad validation (held-out training photos + val).

Runs the network once per photo, keeps the bin logits, then re-decodes them with each lever:
  beta    undo part of the class rebalancing: logits - beta * log(w) (beta = 1 is the calibrated posterior)
  sat     scale the decoded chroma
  bias    a per-bin logit bias fitted on the held-out training photos so the mean predicted distribution matches
          the ground truth's soft-encoded histogram (calibration), reported on held-out and on val separately
  radial  remove the hue-dependent part of the rebalancing weights (keep only their dependence on chroma)
Prints PSNR against gray, colourfulness / ground truth and the mean a*, b* of output and truth (the colour cast).

    PYTHONPATH=. python scripts/decoding_levers.py --train ../shared/data/train --val ../shared/data/val
"""

import argparse

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from colorizer import Colorizer
from colorizer.color import rgb_to_lab
from colorizer.data import colorfulness, named_held_out, named_photos
from colorizer.evaluate import gray_rgb, psnr_uint8, source_of
from colorizer.imageio import load_photo
from colorizer.inference import merge_full_resolution


def collect(colorizer: Colorizer, photos: list) -> list[dict]:
    model, items = colorizer.model, []
    for name, path, split in photos:
        photo = load_photo(path)
        logits, shape = colorizer.network_output(photo.gray, flip_average=False)
        logits = logits[0]
        truth = torch.from_numpy(np.array(photo.rgb)).permute(2, 0, 1).float()[None] / 255
        small = F.interpolate(truth, size=logits.shape[-2:], mode="area")[0].double()
        indices, weights = model.bins.soft_encode((rgb_to_lab(small)[1:] / 110).float()[None])
        histogram = torch.zeros(model.bins.count).index_add_(0, indices.flatten(), weights.flatten())
        items.append({"source": source_of(name), "split": split, "gray": photo.gray, "rgb": photo.rgb,
                      "logits": logits.half(), "shape": shape, "histogram": histogram,
                      "gray_psnr": psnr_uint8(gray_rgb(photo), photo.rgb), "truth_lab": _mean_ab(photo.rgb)})
    return items


def _mean_ab(rgb: np.ndarray) -> tuple[float, float]:
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb)).permute(2, 0, 1).double() / 255)
    return float(lab[1].mean()), float(lab[2].mean())


def decode(colorizer: Colorizer, items: list[dict], temperature: float, bias: torch.Tensor | None = None,
           saturation: float = 1.0) -> pd.DataFrame:
    model, rows = colorizer.model, []
    for item in items:
        logits = item["logits"].float() + (0 if bias is None else bias[:, None, None])
        chroma = model.bins.decode(logits[None], temperature, gain=saturation)[0]
        output = merge_full_resolution(item["gray"], chroma, item["shape"], model.output_stride, "lab")
        a, b = _mean_ab(output)
        rows.append({"source": item["source"], "psnr": psnr_uint8(output, item["rgb"]), "gray_psnr": item["gray_psnr"],
                     "cf": colorfulness(output), "cf_truth": colorfulness(item["rgb"]), "a": a, "b": b,
                     "a_truth": item["truth_lab"][0], "b_truth": item["truth_lab"][1]})
    return pd.DataFrame(rows)


def show(label: str, table: pd.DataFrame) -> None:
    print(f"{label:34s} PSNR {table.psnr.mean() - table.gray_psnr.mean():+.3f} dB  CF {table.cf.mean() / table.cf_truth.mean():.3f}"
          f"  mean a* {table.a.mean():+.2f} (truth {table.a_truth.mean():+.2f})  b* {table.b.mean():+.2f} "
          f"(truth {table.b_truth.mean():+.2f})", flush=True)


def fit_bias(items: list[dict], log_w: torch.Tensor, beta: float, steps: int = 30) -> torch.Tensor:
    """Per-bin logit bias making the mean predicted distribution (T = 1) equal the soft-encoded truth histogram."""
    target = sum(item["histogram"] for item in items)
    target = target / target.sum()
    bias = torch.zeros_like(log_w)
    for _ in range(steps):
        total, count = torch.zeros_like(log_w), 0
        for item in items:
            p = torch.softmax(item["logits"].float() - beta * log_w[:, None, None] + bias[:, None, None], 0)
            total += p.sum((1, 2))
            count += p[0].numel()
        bias = bias + 0.5 * (torch.log(target + 1e-6) - torch.log(total / count + 1e-6))
    return bias - beta * log_w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--model", default="balanced")
    args = parser.parse_args()
    torch.set_num_threads(1)  # shares the machine with the training queue
    colorizer = Colorizer(args.model, device="cpu")
    photos = [(n, p, "held") for n, p in named_held_out(args.train)] + [(n, p, "val") for n, p in named_photos(args.val)]
    items = collect(colorizer, photos)
    held = [i for i in items if i["split"] == "held"]
    val = [i for i in items if i["split"] == "val"]
    log_w = torch.log(colorizer.model.bins.class_weights.float())
    print(f"{args.model}: {len(held)} held-out training photos + {len(val)} val photos")
    for beta in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0):
        for temperature in (0.3, 0.38, 0.6):
            show(f"beta {beta} T {temperature}", decode(colorizer, items, temperature, -beta * log_w))
    for beta, temperature, saturation in ((0.3, 0.3, 1.3), (0.5, 0.5, 1.5), (0.5, 0.38, 1.8), (0.5, 0.5, 1.8)):
        show(f"beta {beta} T {temperature} sat {saturation}",
             decode(colorizer, items, temperature, -beta * log_w, saturation))
    bias = fit_bias(held, log_w, beta=0.0)
    for temperature in (0.3, 0.5):
        show(f"calibrated T {temperature} (held, fitted)", decode(colorizer, held, temperature, bias))
        show(f"calibrated T {temperature} (val)", decode(colorizer, val, temperature, bias))
    radius = (colorizer.model.bins.centers * 110).norm(dim=1)
    ring = ((radius[:, None] - radius[None, :]).abs() <= 5.0).float()
    hue_part = log_w - ring @ log_w / ring.sum(1)  # log w minus its mean over bins of the same chroma
    for strength in (0.5, 1.0):
        show(f"hue-neutral x{strength} T 0.3", decode(colorizer, items, 0.3, -strength * hue_part))
    for temperature in (0.3, 0.38):
        show(f"as shipped T {temperature} (held)", decode(colorizer, held, temperature))
        show(f"as shipped T {temperature} (val)", decode(colorizer, val, temperature))


if __name__ == "__main__":
    main()
