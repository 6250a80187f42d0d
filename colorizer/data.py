"""Training data: any folder tree of photos, decoded once and kept as uint8, cropped and flipped in batches.

Decoding JPEGs is the slow part on two cores, so every photo is decoded once, resized so its short side is
``cache_side`` and kept in memory as uint8; the decoded set is also saved as ``.npy`` files so a resumed run
starts in seconds. Batches are cut with a ``torch.Generator`` whose state is checkpointed, so a resumed run draws
exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursively), sorted for reproducibility."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"no such image folder: {str(root)!r}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an (H, W, 3) RGB array in 0..255."""
    rgb = rgb.astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def is_near_grayscale(rgb: np.ndarray, threshold: float = 5.0) -> bool:
    """True for photos with almost no colour (the Brown paper drops them from training)."""
    return colorfulness(rgb) < threshold


def load_rgb_resized(path: Path, short_side: int) -> np.ndarray:
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        scale = short_side / min(image.size)
        size = (max(short_side, round(image.width * scale)), max(short_side, round(image.height * scale)))
        return np.asarray(image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0))


@dataclass
class PhotoCache:
    """Decoded photos as uint8 (H, W, 3) arrays, every short side = ``side``."""

    photos: list[np.ndarray]
    paths: list[str]
    side: int

    def __len__(self) -> int:
        return len(self.photos)


def _cache_key(paths: list[Path], side: int) -> str:
    digest = hashlib.sha1(str(side).encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def build_cache(paths: list[Path], side: int, cache_dir: str | os.PathLike | None = None,
                skip_grayscale: bool = True, progress: bool = True) -> PhotoCache:
    """Decodes ``paths`` once (or loads a previous decode from ``cache_dir``)."""
    if not paths:
        raise ValueError("no images to train on")
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"photos-{side}-{_cache_key(paths, side)}"
        if cache_file.with_suffix(".pixels.npy").exists():
            pixels = np.load(cache_file.with_suffix(".pixels.npy"), mmap_mode="r")
            shapes = np.load(cache_file.with_suffix(".shapes.npy"))
            kept = cache_file.with_suffix(".paths.txt").read_text().splitlines()
            photos, offset = [], 0
            for height, width in shapes:
                count = int(height) * int(width) * 3
                photos.append(np.array(pixels[offset: offset + count]).reshape(int(height), int(width), 3))
                offset += count
            log.info("loaded %d decoded photos from %s", len(photos), cache_file)
            return PhotoCache(photos, kept, side)
    photos, kept, skipped = [], [], 0
    for path in tqdm(paths, desc="decoding photos", disable=not progress, unit="photo"):
        try:
            rgb = load_rgb_resized(path, side)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            log.warning("skipping %s: %s", path, error)
            continue
        if skip_grayscale and is_near_grayscale(rgb):
            skipped += 1
            continue
        photos.append(rgb)
        kept.append(str(path))
    log.info("decoded %d photos (%d near-grayscale skipped)", len(photos), skipped)
    if not photos:
        raise ValueError("none of the images could be used (all unreadable or grayscale)")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache_file.with_suffix(".pixels.npy"), np.concatenate([p.reshape(-1) for p in photos]))
        np.save(cache_file.with_suffix(".shapes.npy"), np.array([p.shape[:2] for p in photos]))
        cache_file.with_suffix(".paths.txt").write_text("\n".join(kept))
    return PhotoCache(photos, kept, side)


def split_holdout(paths: list[Path], fraction: float, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """A fixed, seeded split of ``paths`` into (train, held-out)."""
    order = np.random.default_rng(seed).permutation(len(paths))
    count = max(1, round(len(paths) * fraction)) if fraction > 0 else 0
    held = sorted(paths[i] for i in order[:count])
    return sorted(paths[i] for i in order[count:]), held


SEMANTIC_SOURCE = "imagenet_sample"  # folder of one-photo-per-class ImageNet samples, named n<wnid>_<label>.jpg
SEMANTIC_SHARE = 8  # one in this many of its photos (by a hash of the file name) is never trained on


def is_semantic_holdout(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of the ImageNet-sample photos kept out of training for the semantic test (Zhang et
    al.'s classifier top-1 on colorized photos): chosen by a hash of the file name, so it is the same set on every
    machine, whatever else the folder holds (~122 of 974)."""
    path = Path(path)
    if path.parent.name != SEMANTIC_SOURCE:
        return False
    return int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) % SEMANTIC_SHARE == 0


def semantic_holdout(train_root: str | os.PathLike) -> list[Path]:
    """The semantic-test photos under ``train_root`` (``is_semantic_holdout``)."""
    return [p for p in list_images(train_root) if is_semantic_holdout(p)]


def held_out_photos(train_root: str | os.PathLike, fraction: float = 0.03, seed: int = 0) -> list[Path]:
    """The photos of ``train_root`` that training holds out for validation (the trainer's default split): with
    ``val`` they make a validation set that spans every training source, not only the val folder's scenes."""
    return split_holdout(list_images(train_root), fraction, seed)[1]


def training_photos(train_root: str | os.PathLike, fraction: float = 0.03, seed: int = 0) -> list[Path]:
    """The photos of ``train_root`` that training trains on: all but ``held_out_photos`` and the semantic holdout."""
    return [p for p in split_holdout(list_images(train_root), fraction, seed)[0] if not is_semantic_holdout(p)]


def named_photos(*sources: str | os.PathLike | list) -> list[tuple[str, Path]]:
    """(name, path) of every image in each folder (named by the path below it, so the first folder is the photo's
    source, e.g. ``osie/x.jpg``) or list of paths (named by file name)."""
    named = []
    for source in sources:
        if isinstance(source, (list, tuple)):
            named += [(Path(p).name, Path(p)) for p in source]
        else:
            root = Path(source)
            named += [(str(p.relative_to(root)) if root.is_dir() else p.name, p) for p in list_images(root)]
    return named


def named_held_out(train_root: str | os.PathLike, fraction: float = 0.03, seed: int = 0) -> list[tuple[str, Path]]:
    """``held_out_photos`` named by their path below ``train_root`` (``osie/x.jpg``)."""
    root = Path(train_root)
    return [(str(p.relative_to(root)), p) for p in held_out_photos(root, fraction, seed)]


class CropSampler:
    """Draws batches of random crops (with random scale and horizontal flips) from a ``PhotoCache``.

    Each batch uses one crop side drawn from [``size``, ``max_crop``] (clipped to the photo), resized to
    ``size`` x ``size``: the network sees objects at several scales.
    """

    def __init__(self, cache: PhotoCache, size: int, max_crop: int | None = None, seed: int = 0,
                 hflip: bool = True, vflip: bool = False):
        self.cache = cache
        self.size = size
        self.max_crop = max_crop or size
        self.hflip, self.vflip = hflip, vflip
        self.generator = torch.Generator().manual_seed(seed)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def sample(self, batch_size: int, with_indices: bool = False):
        """A float RGB batch (B, 3, size, size) in [0, 1] (and, ``with_indices``, each crop's photo index (B,))."""
        crop = self.size + self._randint(self.max_crop - self.size + 1)
        crops, indices = [], []
        for _ in range(batch_size):
            index = self._randint(len(self.cache))
            indices.append(index)
            photo = self.cache.photos[index]
            height, width = photo.shape[:2]
            side = min(crop, height, width)
            top, left = self._randint(height - side + 1), self._randint(width - side + 1)
            patch = torch.from_numpy(photo[top: top + side, left: left + side].copy())
            patch = patch.permute(2, 0, 1).float().div_(255).unsqueeze(0)  # (1, 3, side, side)
            if side != self.size:
                patch = F.interpolate(patch, size=(self.size, self.size), mode="area")
            if self.hflip and self._randint(2):
                patch = patch.flip(-1)
            if self.vflip and self._randint(2):
                patch = patch.flip(-2)
            crops.append(patch)
        batch = torch.cat(crops)
        return (batch, torch.tensor(indices)) if with_indices else batch

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def center_crops(cache: PhotoCache, size: int) -> torch.Tensor:
    """Deterministic validation batch: the centre square of each photo resized to ``size`` (N, 3, size, size)."""
    crops = []
    for photo in cache.photos:
        height, width = photo.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        patch = torch.from_numpy(photo[top: top + side, left: left + side].copy())
        patch = patch.permute(2, 0, 1).float().div_(255).unsqueeze(0)
        crops.append(F.interpolate(patch, size=(size, size), mode="area"))
    return torch.cat(crops)
