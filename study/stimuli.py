"""Stimulus sets: from each real colour photo, the ground truth, one colorized version per model and, for
attention checks, sentinel fakes with obviously wrong colours.

Parity: every stimulus of a photo comes from the same crop (short side resized to ``size``, centre square), is
encoded by the same function (PNG, same settings, no metadata) and is stored under a random public id, so
real and fake differ only in their colours.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity
from sqlalchemy import select
from sqlalchemy.orm import Session

from colorizer.color import lab_to_rgb, rgb_to_lab
from colorizer.data import colorfulness, list_images
from colorizer.evaluate import psnr_uint8
from colorizer.imageio import GrayPhoto, load_photo
from study.protocol import DEFAULT_RULES, CONSENT_VERSION
from study.schema import SourcePhoto, Stimulus, Study, StudyModel

log = logging.getLogger(__name__)

SENTINEL_KINDS = ("hue_rotated", "channel_swapped")
DEFAULT_PHOTOS = Path(__file__).resolve().parent / "default_photos"  # the shipped stimulus set (see its SOURCES.md)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field")


def encode_png(rgb: np.ndarray) -> bytes:
    """The single encoder every stimulus goes through: 8-bit RGB PNG, fixed settings, no metadata chunks."""
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize so the short side is ``size`` and cut the centre square."""
    image = Image.fromarray(rgb, "RGB")
    scale = size / min(image.size)
    resized = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                           Image.Resampling.LANCZOS)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)))


REAL_CHROMA_STRIDE = 4  # the models' chroma resolution (output stride 4): real stimuli get the same bandwidth
# Gaussian pre-filter of the real chroma before the 4x reduction: area averaging alone keeps the steps at the JPEG
# source's 16-pixel chroma block edges (grid-aligned); measured on 40 default photos against `balanced`, sigma 2.5
# brought every artefact feature's real-vs-fake AUC to 0.48-0.56 (sigma 0: 0.56-0.80).
REAL_CHROMA_SIGMA = 2.5


def band_limited(rgb: np.ndarray, stride: int = REAL_CHROMA_STRIDE, sigma: float = REAL_CHROMA_SIGMA) -> np.ndarray:
    """The photo with its own lightness and its own chroma blurred and reduced to 1/``stride`` resolution, merged
    exactly as a model's output is (``merge_full_resolution``): real and colorized stimuli then differ in which
    colours they have, not in chroma sharpness or in the JPEG source's 4:2:0 chroma blocks (no model has them)."""
    import math

    import torch.nn.functional as F

    from colorizer.color import normalize_chroma
    from colorizer.inference import merge_full_resolution

    height, width = rgb.shape[:2]
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).double() / 255)
    chroma = normalize_chroma(lab[1:], "lab").float()[None]  # (1, 2, H, W)
    if sigma > 0:
        radius = int(round(3 * sigma))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        mode = "reflect" if min(height, width) > radius else "replicate"
        chroma = F.conv2d(F.pad(chroma, [radius] * 4, mode=mode), (kernel[:, None] * kernel[None]).expand(2, 1, -1, -1),
                          groups=2)
    small = F.interpolate(chroma, size=(math.ceil(height / stride), math.ceil(width / stride)), mode="area")[0]
    return merge_full_resolution(_lightness_gray(rgb), small, (height, width), stride, "lab")


def hue_rotated(rgb: np.ndarray, degrees: float = 150.0) -> np.ndarray:
    """Rotates every pixel's hue in the ab plane (a sentinel: skies turn orange, skin turns green)."""
    lab = rgb_to_lab(torch.from_numpy(rgb.copy()).permute(2, 0, 1).double() / 255)
    angle = torch.tensor(np.deg2rad(degrees), dtype=torch.float64)
    a, b = lab[1], lab[2]
    rotated = torch.stack((lab[0], a * torch.cos(angle) - b * torch.sin(angle), a * torch.sin(angle) + b * torch.cos(angle)))
    boosted = rotated * torch.tensor([1.0, 1.6, 1.6], dtype=torch.float64).view(3, 1, 1)  # unmistakable
    return (lab_to_rgb(boosted) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def channel_swapped(rgb: np.ndarray) -> np.ndarray:
    """RGB -> BRG: a sentinel with wrong colours everywhere."""
    return np.ascontiguousarray(rgb[..., [2, 0, 1]])


def skimage_photos() -> list[tuple[str, np.ndarray]]:
    """Colour photographs that ship with scikit-image, as (label, RGB array)."""
    from skimage import data

    photos = []
    for name in SKIMAGE_PHOTOS:
        array = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        photos.append((name, np.asarray(array)[..., :3]))
    return photos


def default_photos() -> list[tuple[str, np.ndarray]]:
    """The default study's photos: held out from all training, downscaled, shipped in ``study/default_photos``."""
    return folder_photos(DEFAULT_PHOTOS)


def condition_names(models: Sequence[str]) -> list[str]:
    """One distinct condition name per model given as a shipped name or a weights file.

    A file is named by its stem, but two runs' ``last.safetensors`` must stay two conditions: clashing stems take
    their parent folder's name too (``deepcolor-unet/last``), and any clash left gets a number."""
    stems = [Path(m).stem if m.endswith((".safetensors", ".json")) else m for m in models]
    names = [f"{Path(m).parent.name}/{stem}" if stems.count(stem) > 1 and Path(m).parent.name else stem
             for m, stem in zip(models, stems)]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    if len(set(unique)) != len(unique):  # "a#2" given literally next to two "a": number everything
        unique = [f"{name}#{i + 1}" for i, name in enumerate(names)]
    return unique


def folder_photos(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Colour photos of ``folder`` (grayscale files are skipped: they have no ground truth)."""
    photos = []
    for path in list_images(folder):
        photo = load_photo(path)
        if photo.rgb is None:
            log.warning("skipping %s: grayscale photo has no ground-truth colours", path)
            continue
        photos.append((str(Path(path).relative_to(folder)) if Path(folder).is_dir() else path.name, photo.rgb))
    if not photos:
        raise ValueError(f"no colour photos in {str(folder)!r}")
    return photos


@dataclass
class StudyDesign:
    name: str
    mode: str = "single"  # "single" or "2afc"
    presentation: str = "together"  # 2afc only: "together" or "sequential"
    display_ms: int | None = None  # None: shown until answered; Zhang et al. used 1000
    size: int = 320  # stimulus side in pixels; shown at exactly this many CSS pixels (never upscaled)
    practice_photos: int = 1
    sentinel_fraction: float = 0.1  # share of photos kept for sentinel trials (at least one)
    practice_trials: int = 3  # an obvious fake, a real photo and a real model's colorization
    rules: dict | None = None  # exclusion rules; None -> study.protocol.DEFAULT_RULES
    completion_url: str | None = None  # where finished participants go, "{code}" replaced by their completion code
    # (Prolific: https://app.prolific.com/submissions/complete?cc=CODE, with the study's own code)
    real_chroma: str = "band_limited"  # "band_limited": real stimuli get the models' chroma bandwidth (no JPEG
    # chroma blocks, no sharper chroma than a model can give); "original": the photo as it is
    seed: int = 0  # which photos become practice / sentinel photos
    models_per_participant: int | None = None  # with many models: each participant sees this many (None: all)
    min_window: tuple[int, int] | None = None  # browser window (CSS px) needed; None: what the stimuli need
    allow_touch: bool = False  # let touch-only devices (phones, tablets) take part

    def validate(self) -> None:
        if self.mode not in ("single", "2afc"):
            raise ValueError(f"mode must be 'single' or '2afc', got {self.mode!r}")
        if self.presentation not in ("together", "sequential"):
            raise ValueError(f"presentation must be 'together' or 'sequential', got {self.presentation!r}")
        if self.display_ms is not None and self.display_ms <= 0:
            raise ValueError(f"display_ms must be positive or None, got {self.display_ms}")
        if self.real_chroma not in ("band_limited", "original"):
            raise ValueError(f"real_chroma must be 'band_limited' or 'original', got {self.real_chroma!r}")
        if self.completion_url and not self.completion_url.startswith(("https://", "http://")):
            raise ValueError(f"completion_url must be an http(s) address, got {self.completion_url!r}")
        if self.models_per_participant is not None and self.models_per_participant < 1:
            raise ValueError(f"models_per_participant must be at least 1, got {self.models_per_participant}")
        if self.size < 32:
            raise ValueError(f"stimulus size must be at least 32, got {self.size}")


def _store(session: Session, photo: SourcePhoto, rgb: np.ndarray, condition: str, is_real: bool,
           truth: np.ndarray, sentinel_kind: str | None = None) -> Stimulus:
    content = encode_png(rgb)
    stimulus = Stimulus(public_id=secrets.token_hex(12), photo=photo, condition=condition, is_real=is_real,
                        sentinel_kind=sentinel_kind, content=content, sha256=hashlib.sha256(content).hexdigest(),
                        width=rgb.shape[1], height=rgb.shape[0],
                        psnr=None if is_real else psnr_uint8(rgb, truth),
                        ssim=None if is_real else float(structural_similarity(rgb, truth, channel_axis=2, data_range=255)),
                        mse=None if is_real else float(np.mean((rgb.astype(np.float64) / 255 - truth / 255.0) ** 2)),
                        colorfulness=colorfulness(rgb))
    session.add(stimulus)
    return stimulus


def list_count(mode: str, models: int, per_participant: int | None) -> int:
    """Latin-square lists: one per rotation of a participant's conditions; with model subsets, one per subset and
    rotation (``study.protocol.participant_conditions``)."""
    shown = models if per_participant is None else per_participant
    rotations = shown if mode == "2afc" else shown + 1  # single mode: "real" is a condition too
    return rotations if per_participant is None else models * rotations


def build_study(session: Session, design: StudyDesign, photos: Sequence[tuple[str, np.ndarray]],
                colorizers: dict[str, Callable], descriptions: dict[str, str] | None = None,
                progress: Callable[[float, str], None] | None = None, is_default: bool = False) -> Study:
    """Creates a study with its stimuli. ``colorizers`` maps a model name to a ``Colorizer``."""
    design.validate()
    if not colorizers:
        raise ValueError("a study needs at least one colorizer model")
    if "real" in colorizers or "sentinel" in colorizers:
        raise ValueError("'real' and 'sentinel' are reserved condition names")
    if session.scalar(select(Study).where(Study.name == design.name)) is not None:
        raise ValueError(f"a study named {design.name!r} already exists")
    sentinel_count = max(1, round(len(photos) * design.sentinel_fraction))
    if len(photos) < design.practice_photos + sentinel_count + 1:
        raise ValueError(f"need at least {design.practice_photos + sentinel_count + 1} photos, got {len(photos)}")
    per_participant = design.models_per_participant
    if per_participant is not None and per_participant >= len(colorizers):
        per_participant = None  # every participant sees every model anyway
    study = Study(name=design.name, mode=design.mode, presentation=design.presentation, display_ms=design.display_ms,
                  consent_version=CONSENT_VERSION, exclusion_rules=dict(design.rules or DEFAULT_RULES),
                  list_count=list_count(design.mode, len(colorizers), per_participant),
                  models_per_participant=per_participant, stimulus_size=design.size, is_default=is_default,
                  min_window_width=design.min_window[0] if design.min_window else None,
                  min_window_height=design.min_window[1] if design.min_window else None,
                  allow_touch=design.allow_touch,
                  id_salt=secrets.token_hex(16), practice_trials=design.practice_trials,
                  completion_url=design.completion_url)
    session.add(study)
    for position, name in enumerate(["real", *colorizers]):
        session.add(StudyModel(study=study, name=name, position=position, is_real=name == "real",
                               description=(descriptions or {}).get(name, ""),
                               weights_sha256=getattr(colorizers.get(name), "weights_sha256", None)))
    order = np.random.default_rng(design.seed).permutation(len(photos))
    roles = ["practice"] * design.practice_photos + ["sentinel"] * sentinel_count
    roles += ["main"] * (len(photos) - len(roles))
    role_of = {int(index): role for index, role in zip(order, roles)}
    sentinel_number = 0
    for position, (label, rgb) in enumerate(photos):
        if progress:
            progress(position / len(photos), f"photo {position + 1} of {len(photos)}")
        truth = square_crop(np.asarray(rgb, dtype=np.uint8), design.size)
        photo = SourcePhoto(study=study, position=position, label=label, role=role_of[position])
        session.add(photo)
        real = band_limited(truth) if design.real_chroma == "band_limited" else truth
        _store(session, photo, real, "real", True, truth)
        role = role_of[position]
        if role in ("sentinel", "practice"):
            kinds = SENTINEL_KINDS if role == "practice" else (SENTINEL_KINDS[sentinel_number % 2],)
            sentinel_number += role == "sentinel"
            for kind in kinds:
                fake = hue_rotated(real) if kind == "hue_rotated" else channel_swapped(real)
                _store(session, photo, fake, "sentinel", False, truth, sentinel_kind=kind)
        if role in ("main", "practice"):
            gray = GrayPhoto(_lightness_gray(truth), None, None)
            # practice also shows a real model's colorization (the first model), not only obvious fakes
            chosen = colorizers.items() if role == "main" else list(colorizers.items())[:1]
            for name, colorizer in chosen:
                fake = np.asarray(colorizer.colorize_photo(gray, size=design.size).convert("RGB"))
                _store(session, photo, fake, name, False, truth)
    session.flush()
    if progress:
        progress(1.0, "done")
    return study


def _lightness_gray(rgb: np.ndarray) -> np.ndarray:
    """The photo as a gray image with the same CIE L* (what a colorizer would be given)."""
    from colorizer.imageio import split_photo

    return split_photo(Image.fromarray(rgb, "RGB")).gray
