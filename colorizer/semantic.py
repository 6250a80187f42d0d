"""A semantic judge beside PSNR: does a colorized photo look like its real self to an ImageNet classifier?

Two measures, both from an EfficientNet-Lite classifier that should not be the judged model's own encoder (Lite2
judging a Lite0 model, for example; ``judge_for`` picks one):
- the Fréchet distance (Heusel et al. 2017, FID's formula) between the classifier's pooled features of colorized and
  of real photos: lower is closer to real photos as a set;
- Zhang et al.'s (2016) semantic test: the classifier's top-1 accuracy on colorized versions of held-out ImageNet
  photos, beside its top-1 on the gray and the real versions (their VGG-16: 52.7% gray, 56.0% colorized, 68.3% real).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from colorizer.models.efficientnet_lite import imagenet_classifier, normalized_rgb_input

CROP_FRACTION = 0.875  # resize the short side to resolution / 0.875, then centre-crop: the usual ImageNet protocol


@functools.lru_cache(maxsize=None)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names in the classifiers' index order (torchvision's list, read from disk)."""
    import torchvision

    return tuple(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


# The three class names ImageNet uses twice, told apart by WordNet id (torchvision's names: "crane bird", "crane",
# "maillot", "maillot tank suit", "Cardigan", "cardigan"); every other name is unique.
AMBIGUOUS_WNIDS = {"n02012849": 134, "n03126707": 517, "n03710637": 638, "n03710721": 639, "n02113186": 264,
                   "n02963159": 474}


def imagenet_sample_labels(paths: list[Path]) -> dict[Path, int]:
    """Class index of each ``n<wnid>_<label>.<ext>`` photo (ImageNet's sample-image naming), by its label's name
    in the class list (``AMBIGUOUS_WNIDS`` for the three names used twice). Photos not named so are left out."""
    index = {}
    for position, name in enumerate(imagenet_categories()):
        index.setdefault(_normalise(name), position)
    labels = {}
    for path in paths:
        match = re.match(r"(n\d{8})_(.+)$", Path(path).stem)
        if not match:
            continue
        found = AMBIGUOUS_WNIDS.get(match.group(1), index.get(_normalise(match.group(2))))
        if found is not None:
            labels[Path(path)] = found
    return labels


def judge_for(encoder_variant: str | None) -> str:
    """A judge that is not the model's own encoder: Lite2, or Lite1 for a model built on Lite2."""
    return "lite1" if encoder_variant == "lite2" else "lite2"


def model_encoder_variant(model: torch.nn.Module) -> str | None:
    return getattr(model.config, "encoder", None) if getattr(model, "architecture", "") == "lite_unet" else None


class Judge:
    """An ImageNet EfficientNet-Lite classifier applied to uint8 RGB photos."""

    def __init__(self, variant: str = "lite2", device: str | torch.device = "cpu"):
        self.variant = variant
        self.device = torch.device(device)
        self.network = imagenet_classifier(variant).to(self.device)
        self.resolution = self.network.resolution

    def _batch(self, photos: list[np.ndarray]) -> torch.Tensor:
        side = self.resolution
        tensors = []
        for photo in photos:
            image = Image.fromarray(photo)
            scale = side / CROP_FRACTION / min(image.size)
            image = image.resize((max(side, round(image.width * scale)), max(side, round(image.height * scale))),
                                 Image.Resampling.BICUBIC)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            tensors.append(torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1))
        return normalized_rgb_input(torch.stack(tensors).float().div(255)).to(self.device)

    @torch.no_grad()
    def features_and_logits(self, photos: list[np.ndarray], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """(N, 1280) pooled features and (N, 1000) logits of uint8 (H, W, 3) photos."""
        features, logits = [], []
        for start in range(0, len(photos), batch_size):
            pooled = self.network.pooled_features(self._batch(photos[start: start + batch_size]))
            features.append(pooled.float().cpu())
            logits.append(self.network._fc(pooled).float().cpu())
        return torch.cat(features).numpy().astype(np.float64), torch.cat(logits).numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D) (FID's formula).

    Biased upward at small N (Chong & Forsyth 2020): compare models only on the same photos."""
    from scipy import linalg

    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)  # scipy >= 1.16: no disp; non-finite entries signal failure
    if not np.isfinite(root).all():  # near-singular product: regularise as the reference implementation does
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


@dataclass
class SemanticResult:
    per_photo: pd.DataFrame  # photo, label, and the top-1 prediction of each version
    judge: str

    def top1(self) -> dict[str, float]:
        table = self.per_photo
        return {version: float((table[f"pred_{version}"] == table["label"]).mean())
                for version in ("gray", "colorized", "real")}


def semantic_test(colorize, photos: list[Path], judge: Judge, progress: bool = True) -> SemanticResult:
    """Top-1 of ``judge`` on the gray, colorized and real versions of labelled ImageNet-sample ``photos``.

    ``colorize``: a function from a ``GrayPhoto`` to a uint8 RGB array (``Colorizer.colorize_photo``)."""
    from tqdm import tqdm

    from colorizer.evaluate import gray_rgb
    from colorizer.imageio import GrayPhoto, load_photo

    labels = imagenet_sample_labels(photos)
    if not labels:
        raise ValueError("none of the photos is named like an ImageNet sample (n<wnid>_<label>.jpg)")
    rows, versions = [], {"gray": [], "colorized": [], "real": []}
    for path, label in tqdm(labels.items(), desc="semantic test", unit="photo", disable=not progress):
        photo = load_photo(path)
        if photo.rgb is None:
            continue
        versions["gray"].append(gray_rgb(photo))
        versions["colorized"].append(np.asarray(colorize(GrayPhoto(photo.gray, None, None))))
        versions["real"].append(photo.rgb)
        rows.append({"photo": path.name, "label": label})
    table = pd.DataFrame(rows)
    for version, images in versions.items():
        table[f"pred_{version}"] = judge.features_and_logits(images)[1].argmax(1)
    return SemanticResult(table, judge.variant)
