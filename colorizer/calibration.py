"""Calibrating a classification model's bin distribution to the colours photos really have (a prior correction).

Class rebalancing (Zhang et al. 2016) trains a network to over-predict rare, saturated bins, and a network has hue
biases of its own on top (``balanced`` predicts a mean a* of +4.0 where its training photos average +1.4: a red
cast). ``match_marginal`` finds one additive logit per bin such that the network's mean predicted distribution
(T = 1) over many pixels equals the soft-encoded bin frequencies of the true colours: the fixed point of
``shift <- shift + log(truth / predicted)``, the prior adjustment of Saerens, Latinne & Decaestecker (2002).
Decoding then adds ``prior_correction * shift`` to the logits (``AbBins.decode``): 1 is the full correction, 0 none.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from colorizer.bins import AB_LIMIT
from colorizer.color import normalize_chroma, rgb_to_lab
from colorizer.imageio import load_photo
from colorizer.inference import Colorizer

log = logging.getLogger(__name__)

SHIFT_LIMIT = 4.0  # a bin the photos never show would otherwise be pushed to -inf
FLOOR = 1e-5  # frequency floor inside the logarithm, for the same reason


def match_marginal(logits: torch.Tensor, targets: torch.Tensor, iterations: int = 50,
                   tolerance: float = 1e-4) -> torch.Tensor:
    """Logits (N, Q) and target distributions (N, Q) of N pixels -> shift (Q,): softmax(logits + shift) averaged
    over the pixels matches the targets' average (total variation below ``tolerance``, or ``iterations`` steps)."""
    if logits.shape != targets.shape or logits.dim() != 2:
        raise ValueError(f"expected logits and targets of the same shape (N, Q), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    logits = logits.double()  # 1.5M pixels x 227 bins is 2.7 GB in float64: affordable, and sums stay exact
    wanted = targets.double().mean(0)
    shift = torch.zeros(logits.shape[1], dtype=torch.float64)
    for _ in range(iterations):
        predicted = torch.softmax(logits + shift, dim=1).mean(0)
        if (predicted - wanted).abs().sum() / 2 < tolerance:
            break
        shift = (shift + torch.log((wanted + FLOOR) / (predicted + FLOOR))).clamp(-SHIFT_LIMIT, SHIFT_LIMIT)
    return (shift - shift.mean()).float()  # softmax ignores a common offset; centring keeps the numbers readable


@torch.inference_mode()
def sample_pixels(colorizer: Colorizer, paths: list[Path], pixels_per_photo: int = 1500, seed: int = 0,
                  progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, Q), soft-encoded true bins (N, Q)) at ``pixels_per_photo`` random pixels of each colour photo,
    at the model's output resolution for its working size."""
    model = colorizer.model
    if getattr(model.config, "head", None) != "classify":
        raise ValueError(f"{colorizer.name} is a regression model: it has no bin distribution to calibrate")
    generator = torch.Generator().manual_seed(seed)
    logit_rows, target_rows = [], []
    for path in tqdm(paths, desc="calibrating", unit="photo", disable=not progress):
        photo = load_photo(path)
        if photo.rgb is None:
            continue
        logits = colorizer.network_output(photo.gray, flip_average=False)[0][0].cpu()  # (Q, h, w)
        count, height, width = logits.shape
        rgb = torch.from_numpy(photo.rgb.copy()).permute(2, 0, 1)[None].float() / 255  # copy: the array is read-only
        rgb = F.interpolate(rgb, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        ab = normalize_chroma(rgb_to_lab(rgb.clamp(0, 1))[:, 1:], "lab").to(colorizer.device)  # (1, 2, h, w)
        indices, weights = (tensor.cpu() for tensor in model.bins.soft_encode(ab))  # each (1, k, h, w)
        pick = torch.randint(0, height * width, (pixels_per_photo,), generator=generator)
        logit_rows.append(logits.reshape(count, -1)[:, pick].T)
        targets = torch.zeros(pixels_per_photo, count)
        targets.scatter_add_(1, indices[0].flatten(1)[:, pick].T, weights[0].flatten(1)[:, pick].T.float())
        target_rows.append(targets)
    if not logit_rows:
        raise ValueError("none of the photos has colour to calibrate against")
    return torch.cat(logit_rows), torch.cat(target_rows)


def fit_prior_shift(colorizer: Colorizer, paths: list[Path], photos: int = 400, pixels_per_photo: int = 1500,
                    seed: int = 0, progress: bool = True) -> tuple[torch.Tensor, dict]:
    """The per-bin shift for ``colorizer``'s model, fitted on ``photos`` photos drawn (``seed``) from ``paths``;
    with a summary: mean a*, b* of the predicted (T = 1) and true distributions before and after."""
    chosen = sorted(paths)
    if len(chosen) < photos:
        log.warning("asked to fit on %d photos; the folder has only %d (after the held-out share): fitting on %d",
                    photos, len(chosen), len(chosen))
    random.Random(seed).shuffle(chosen)
    logits, targets = sample_pixels(colorizer, chosen[:photos], pixels_per_photo, seed, progress)
    shift = match_marginal(logits, targets)
    centers = colorizer.model.bins.centers.float().cpu() * AB_LIMIT  # Lab units
    before = torch.softmax(logits, 1).mean(0) @ centers
    after = torch.softmax(logits + shift, 1).mean(0) @ centers
    truth = targets.mean(0) @ centers
    summary = {"photos": len(chosen[:photos]), "pixels": int(logits.shape[0]), "seed": seed,
               "mean_ab_predicted": [round(float(v), 3) for v in before],
               "mean_ab_corrected": [round(float(v), 3) for v in after],
               "mean_ab_truth": [round(float(v), 3) for v in truth]}
    return shift, summary


def write_preset(path: str | os.PathLike, weights: str | os.PathLike, shift: torch.Tensor, decoding: dict,
                 description: str, fitted: dict) -> Path:
    """A preset (``colorizer.weights``) that decodes ``weights`` with ``decoding`` and the fitted ``shift``.
    ``weights`` is written relative to the preset's folder when it lies inside it, so the pair can move together."""
    path = Path(path)
    weights = Path(weights).resolve()
    try:
        reference = str(weights.relative_to(path.parent.resolve()))
    except ValueError:
        reference = str(weights)
    payload = {"weights": reference, **decoding, "description": description, "prior_fit": fitted,
               "prior_shift": [round(float(value), 4) for value in shift], "metrics": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
