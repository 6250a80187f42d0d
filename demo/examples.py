"""Example photos for the colorize tab and the CLI's ``samples``: a dozen real black-and-white and faded historical
photos shipped in ``demo/examples`` (sources and licences in its SOURCES.md), and two colour photos from
scikit-image, so a colorization can be set beside the truth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

HISTORICAL_DIR = Path(__file__).resolve().parent / "examples"
COLOR_EXAMPLES = ("astronaut", "coffee")  # scikit-image's colour photos: colorize their gray copy, compare


def historical_examples() -> list[Path]:
    """The shipped historical photos, in file-name order."""
    return sorted(HISTORICAL_DIR.glob("*.jpg"))


def write_examples(folder: str | os.PathLike) -> list[Path]:
    """The historical photos, then the colour examples written into ``folder`` (once); returns their paths."""
    from skimage import data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = historical_examples()
    for loader in COLOR_EXAMPLES:
        path = folder / f"{loader}.png"
        if not path.exists():
            Image.fromarray(np.asarray(getattr(data, loader)())[..., :3]).save(path)
        paths.append(path)
    return paths
