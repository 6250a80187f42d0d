"""Example photos for the colorize tab: real black-and-white photos that ship with scikit-image."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

# (scikit-image loader, file name, caption): public-domain or freely licensed gray photographs (see skimage.data)
GRAY_EXAMPLES = (
    ("camera", "cameraman.png", "Cameraman (MIT, 1970s)"),
    ("moon", "moon.png", "Surface of the moon"),
    ("coins", "coins.png", "Greek coins (Brooklyn Museum)"),
    ("page", "page.png", "A page of text"),
    ("text", "text.png", "Hand-drawn text"),
    ("brick", "brick.png", "Brick wall"),
    ("grass", "grass.png", "Grass"),
    ("gravel", "gravel.png", "Gravel"),
)
PHOTO_EXAMPLES = ("camera", "moon", "coins", "brick", "grass", "gravel")


def write_examples(folder: str | os.PathLike) -> list[Path]:
    """Writes the gray example photos into ``folder`` (once) and returns their paths."""
    from skimage import data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for loader, filename, _ in GRAY_EXAMPLES:
        if loader not in PHOTO_EXAMPLES:
            continue
        path = folder / filename
        if not path.exists():
            Image.fromarray(getattr(data, loader)()).save(path)
        paths.append(path)
    return paths
