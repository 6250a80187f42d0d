"""Reading any user image safely and splitting it into full-resolution lightness and alpha.

Every PIL mode is accepted: 1, L, LA, P (with or without transparency), RGB, RGBA, CMYK, YCbCr, LAB, HSV, I;16*,
I and F. EXIF orientation is applied so the output is upright. Images above ``max_pixels`` are refused before
they are decoded (a decompression bomb never reaches memory); files that are not images raise
``InvalidImageError`` with the reason. A file of several frames (a multi-page TIFF, an animated GIF) gives its first:
the count is kept (``frame_count``) so that callers say so, and ``load_photo`` warns (``MultiFrameWarning``).
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: larger than any camera photo, far below a decompression bomb

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


class InvalidImageError(ValueError):
    """The input is not an image this program can read (corrupt, empty, not an image, unsupported)."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than allowed (a decompression bomb or an absurdly large scan)."""


class MultiFrameWarning(UserWarning):
    """The file holds several frames or pages; only the first is colorized."""


@dataclass
class GrayPhoto:
    """A photo reduced to what colourisation needs, at full resolution."""

    # (H, W) gamma-encoded like sRGB, the photo's lightness as a gray image: uint8 for 8-bit gray photos (a 50 MP
    # scan stays 50 MB, not 200), else float32 in [0, 1]
    levels: np.ndarray
    alpha: Optional[np.ndarray]  # (H, W) uint8 alpha channel, or None
    rgb: Optional[np.ndarray]  # (H, W, 3) uint8 when the input had colour (used for L and by evaluation), else None
    frames: int = 1  # frames or pages in the file; only the first is here

    @functools.cached_property
    def gray(self) -> np.ndarray:
        """The levels as float32 in [0, 1]."""
        if self.levels.dtype == np.uint8:
            return self.levels.astype(np.float32) / 255.0
        return self.levels

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        return self.levels.shape[1], self.levels.shape[0]


def _describe(source: ImageInput) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(str(source))
    return f"<{type(source).__name__}>"


def open_image(source: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Opens a path, bytes, numpy array or PIL image; checks its pixel count before decoding; applies EXIF rotation."""
    if isinstance(source, np.ndarray):
        try:
            source = Image.fromarray(source)
        except (TypeError, ValueError) as error:
            raise InvalidImageError(f"cannot make an image of an array of shape {source.shape} and dtype "
                                    f"{source.dtype}: {error}") from None
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise InvalidImageError("the upload is empty (0 bytes)")
            stream = io.BytesIO(source)
        else:
            path = Path(source)
            if not path.exists():
                raise FileNotFoundError(f"no such file: {str(path)!r}")
            if path.is_dir():
                raise InvalidImageError(f"expected an image file, got the folder {str(path)!r}")
            if path.stat().st_size == 0:
                raise InvalidImageError(f"{str(path)!r} is empty (0 bytes)")
            stream = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream)
        except UnidentifiedImageError:
            raise InvalidImageError(f"{_describe(source)} is not an image file (or a format Pillow cannot read)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLargeError(f"{_describe(source)} is too large to open safely: {error}") from None
        except OSError as error:
            raise InvalidImageError(f"cannot read {_describe(source)}: {error}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{_describe(source)} has {width}x{height} = {width * height / 1e6:.1f} megapixels; "
                                 f"the limit is {max_pixels / 1e6:.0f} megapixels")
    if width == 0 or height == 0:
        raise InvalidImageError(f"{_describe(source)} has no pixels ({width}x{height})")
    frames = frame_count(image)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # size already checked above
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImageError(f"{_describe(source)} is corrupt or truncated: {error}") from None
    if frames > 1:
        upright.info[FRAMES_KEY] = frames  # the copy exif_transpose makes is a single frame
        if upright is not image and not isinstance(source, Image.Image):
            image.close()  # a file of several frames stays open for seeking; the copy no longer needs it
    return upright


FRAMES_KEY = "colorizer:frames"


def frame_count(image: Image.Image) -> int:
    """How many frames or pages the file an image came from holds (1 for most photos)."""
    return int(image.info.get(FRAMES_KEY, getattr(image, "n_frames", 1)))


def first_frame_note(frames: int) -> str:
    """What a person is told about a file of several frames."""
    return f"it holds {frames} frames (pages); only the first was colorized"


def _integer_gray(array: np.ndarray) -> np.ndarray:
    """16- or 32-bit integer gray -> [0, 1]: 16-bit range if it fits, else the array's own maximum."""
    array = array.astype(np.float32)
    top = 65535.0 if array.max(initial=0) <= 65535 else float(array.max())
    return np.clip(array / top, 0, 1)


def split_photo(image: Image.Image) -> GrayPhoto:
    """Full-resolution gray (lightness as gamma-encoded gray), alpha and, for colour inputs, RGB."""
    mode = image.mode
    alpha = None
    frames = frame_count(image)  # before any conversion (convert keeps info today; a copy need not)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La", "RGBA", "RGBa"):
        alpha = np.asarray(image.getchannel("A"))
        image = image.convert("L" if mode.startswith("L") else "RGB")
        mode = image.mode
    if mode == "1":
        image, mode = image.convert("L"), "L"
    if mode == "L":
        return GrayPhoto(np.array(image, dtype=np.uint8), alpha, None, frames)
    if mode.startswith("I;16") or mode == "I":
        return GrayPhoto(_integer_gray(np.asarray(image)), alpha, None, frames)
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        scale = 1.0 if array.max(initial=0) <= 1.0 else 255.0
        return GrayPhoto(np.clip(array / scale, 0, 1), alpha, None, frames)
    rgb = np.asarray(image.convert("RGB"))  # RGB, CMYK, YCbCr, LAB, HSV
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return GrayPhoto(np.ascontiguousarray(rgb[..., 0]), alpha, None, frames)  # a gray photo stored as RGB
    return GrayPhoto(_rgb_to_gray(rgb), alpha, rgb, frames)


def _rgb_to_gray(rgb: np.ndarray, rows: int = 1024) -> np.ndarray:
    """The gray level whose CIE L* equals the colour's L* (so colourising keeps the input's lightness exactly)."""
    import torch

    from colorizer.color import lightness_to_gray, rgb_to_lab

    out = np.empty(rgb.shape[:2], dtype=np.float32)
    for top in range(0, rgb.shape[0], rows):  # row chunks bound the memory of large photos
        chunk = torch.from_numpy(rgb[top: top + rows].copy()).permute(2, 0, 1).float().div(255)
        lightness = rgb_to_lab(chunk)[0]
        out[top: top + rows] = lightness_to_gray(lightness).numpy()
    return out


def load_photo(source: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> GrayPhoto:
    """Opens any supported input and splits it (see ``split_photo``)."""
    image = open_image(source, max_pixels)
    try:
        photo = split_photo(image)
    except (OSError, ValueError) as error:
        raise InvalidImageError(f"cannot convert {_describe(source)} (mode {image.mode}): {error}") from None
    if photo.frames > 1:
        warnings.warn(f"{_describe(source)}: {first_frame_note(photo.frames)}", MultiFrameWarning, stacklevel=2)
    return photo
