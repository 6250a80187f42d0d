"""Evaluation on a folder of colour photos: colourise each photo's grayscale version and compare.

Per photo: PSNR (sRGB, 8-bit), SSIM, mean ab error (Lab units), MSE as the source papers define it (RGB in [0, 1];
ab in Lab units; Huber over uv in [0, 1]), colourfulness (Hasler & Suesstrunk 2003) of the
output and of the ground truth; the same numbers for the grayscale baseline (the photo's own L with no chroma).
The summary adds delta-colourfulness |mean CF(out) - mean CF(gt)| (DDColor's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skimage.metrics import structural_similarity
from tqdm import tqdm

from colorizer.color import normalize_chroma, rgb_to_lab, rgb_to_luv
from colorizer.data import colorfulness, named_photos
from colorizer.imageio import GrayPhoto, load_photo
from colorizer.inference import Colorizer


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(255.0 ** 2 / error)


def ab_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 2) float ab."""
    tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1).double() / 255
    return rgb_to_lab(tensor)[1:].permute(1, 2, 0).numpy()


def uv_unit_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 2) LUV u, v mapped to [0, 1] by the ranges LUV models are trained on (a
    sigmoid output's range, as the UCSD paper's model has)."""
    tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1).double() / 255
    unit = (normalize_chroma(rgb_to_luv(tensor)[1:], "luv") + 1) / 2
    return unit.permute(1, 2, 0).numpy()


def gray_rgb(photo: GrayPhoto) -> np.ndarray:
    """The grayscale baseline as uint8 RGB: the photo's lightness, no chroma."""
    gray = np.round(photo.gray * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def mse_unit(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of RGB scaled to [0, 1], over pixels and channels (how DeepColor and OrGANic report MSE)."""
    return float(np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2))


def mse_ab(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over the a and b channels in Lab units, averaged over pixels and both channels (Keras'
    ``mse`` on ab, as Brown et al. report it)."""
    return float(np.mean((ab_map(a) - ab_map(b)) ** 2))


def huber_uv(a: np.ndarray, b: np.ndarray) -> float:
    """SmoothL1 (beta 1) over LUV u, v in [0, 1], averaged over pixels and both channels (the UCSD paper's test loss;
    its exact [0, 1] mapping is not given, so the one LUV models train on here is used)."""
    return float(torch.nn.functional.smooth_l1_loss(torch.from_numpy(uv_unit_map(a)),
                                                    torch.from_numpy(uv_unit_map(b)), beta=1.0))


def ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference between two uint8 RGB images (scikit-image)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean())


def photo_metrics(output: np.ndarray, truth: np.ndarray) -> dict:
    return {
        "psnr": psnr_uint8(output, truth),
        "mse": mse_unit(output, truth),
        "mse_ab": mse_ab(output, truth),
        "huber_uv": huber_uv(output, truth),
        "ciede2000": ciede2000(output, truth),
        "ssim": structural_similarity(output, truth, channel_axis=2, data_range=255),
        "ab_error": float(np.linalg.norm(ab_map(output) - ab_map(truth), axis=2).mean()),
        "colorfulness": colorfulness(output),
    }


@dataclass
class Evaluation:
    per_photo: pd.DataFrame  # one row per photo: model and gray-baseline metrics
    summary: pd.DataFrame  # rows "model" and "gray", columns the mean metrics
    frechet: dict | None = None  # with a judge: Fréchet distance to the real photos of "model" and "gray", "judge"


def evaluate_folder(colorizer: Colorizer, folder: str | Path | list, size: int | None = None, progress: bool = True,
                    limit: int | None = None, keep_outputs: int = 0, judge=None) -> tuple[Evaluation, list]:
    """Runs ``colorizer`` on the grayscale version of every colour photo in ``folder``: a folder, a list of paths,
    or a list of (name, path) pairs (``colorizer.data.named_photos``; the name's first folder is its source).
    ``judge`` (``colorizer.semantic.Judge``): also the Fréchet distance of the outputs (and of the gray baseline) to
    the real photos in the judge's features.

    Returns the evaluation and up to ``keep_outputs`` (name, gray, output, truth) tuples for a comparison sheet.
    """
    rows, kept = [], []
    features = {"model": [], "gray": [], "real": []}
    if isinstance(folder, list) and folder and isinstance(folder[0], tuple):
        photos = folder[:limit]
    else:
        photos = named_photos(folder)[:limit]
    if not photos:
        raise ValueError(f"no images in {str(folder)!r}")
    for name, path in tqdm(photos, desc="evaluating", unit="photo", disable=not progress):
        photo = load_photo(path)
        if photo.rgb is None:
            continue  # a grayscale photo has no ground-truth colour
        truth = photo.rgb
        gray_photo = GrayPhoto(photo.gray, None, None)
        output = np.asarray(colorizer.colorize_photo(gray_photo, size=size))
        baseline = gray_rgb(photo)
        row = {"photo": name, "cf_truth": colorfulness(truth)}
        row.update({f"{k}": v for k, v in photo_metrics(output, truth).items()})
        row.update({f"gray_{k}": v for k, v in photo_metrics(baseline, truth).items()})
        rows.append(row)
        if judge is not None:
            triple = judge.features_and_logits([output, baseline, truth])[0]
            for key, vector in zip(("model", "gray", "real"), triple):
                features[key].append(vector)
        if len(kept) < keep_outputs:
            kept.append((row["photo"], baseline, output, truth))
    per_photo = pd.DataFrame(rows)
    frechet = None
    if judge is not None:
        from colorizer.semantic import frechet_distance

        real = np.stack(features["real"])
        frechet = {key: frechet_distance(np.stack(features[key]), real) for key in ("model", "gray")}
        frechet["judge"] = judge.variant
    return Evaluation(per_photo, summarize(per_photo), frechet), kept


def summarize(per_photo: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics of the model and of the gray baseline, side by side."""
    metrics = ["psnr", "mse", "mse_ab", "huber_uv", "ssim", "ab_error", "ciede2000", "colorfulness"]
    cf_truth = per_photo["cf_truth"].mean()
    table = {}
    for label, prefix in (("model", ""), ("gray", "gray_")):
        values = {m: per_photo[prefix + m].mean() for m in metrics}
        values["cf_truth"] = cf_truth
        values["cf_ratio"] = values["colorfulness"] / cf_truth
        values["delta_cf"] = abs(values["colorfulness"] - cf_truth)
        table[label] = values
    summary = pd.DataFrame(table).T
    summary.index.name = "method"
    return summary


TOP_LEVEL = "(top level)"


def source_of(name: str) -> str:
    """The first folder of a photo's name (``osie/x.jpg`` -> ``osie``); ``(top level)`` for a photo directly in the
    evaluated folder, which reads better in a per-source table than ``.``."""
    parts = Path(name).parts
    return parts[0] if len(parts) > 1 else TOP_LEVEL


def per_source(per_photo: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR against gray and colourfulness / ground truth per source: the first folder of each photo's path
    (e.g. ``bsds500/x.jpg``), so a mixed validation set shows where a model is weak."""
    sources = per_photo["photo"].map(source_of)
    grouped = per_photo.assign(source=sources).groupby("source")
    table = pd.DataFrame({
        "photos": grouped.size(),
        "psnr_vs_gray": grouped["psnr"].mean() - grouped["gray_psnr"].mean(),
        "cf_ratio": grouped["colorfulness"].mean() / grouped["cf_truth"].mean(),
        "ciede2000": grouped["ciede2000"].mean(),
    })
    return table


def format_summary(summary: pd.DataFrame, photos: int) -> str:
    lines = [f"{'':8} {'PSNR dB':>8} {'MSE':>7} {'SSIM':>7} {'ab err':>7} {'dE2000':>7} {'CF':>7} {'CF gt':>7} "
             f"{'CF/gt':>6} {'dCF':>6}"]
    for label, row in summary.iterrows():
        lines.append(f"{label:8} {row.psnr:8.3f} {row.mse:7.4f} {row.ssim:7.4f} {row.ab_error:7.3f} "
                     f"{row.ciede2000:7.3f} {row.colorfulness:7.2f} {row.cf_truth:7.2f} {row.cf_ratio:6.3f} "
                     f"{row.delta_cf:6.2f}")
    model, gray = summary.loc["model"], summary.loc["gray"]
    lines.append(f"model - gray: PSNR {model.psnr - gray.psnr:+.3f} dB, colorfulness {model.cf_ratio:.3f} of ground "
                 f"truth ({photos} photos)")
    return "\n".join(lines)


def comparison_sheet(items: list, path: str | Path, thumb: int = 200) -> Path:
    """Per photo: gray input | prediction | ground truth | chroma error map (Brown, Fig. 5). Saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(items)
    figure, axes = plt.subplots(rows, 4, figsize=(4 * thumb / 100 * 0.9, rows * thumb / 100 * 0.75 + 0.3),
                                squeeze=False)
    for row, (name, gray, output, truth) in enumerate(items):
        error = np.linalg.norm(ab_map(output) - ab_map(truth), axis=2)
        panels = [(gray, "gray input"), (output, "prediction"), (truth, "ground truth"), (error, "ab error")]
        for column, (image, title) in enumerate(panels):
            axis = axes[row, column]
            if image.ndim == 2:
                shown = axis.imshow(image, cmap="magma", vmin=0, vmax=60)
            else:
                axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
        axes[row, 0].set_ylabel(Path(name).stem[:18], fontsize=7)
    figure.colorbar(shown, ax=axes[:, 3].tolist(), shrink=0.6, label="ab error (Lab units)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
