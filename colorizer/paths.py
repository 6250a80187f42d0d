"""Where the shipped weights are, importable without PyTorch (the app's argument parser uses it before torch loads).

In a clone (or an editable install) they are the repository's ``weights/``; after ``pip install .`` they are
installed as data under ``PREFIX/share/colorizer/weights``. ``COLORIZER_WEIGHTS_DIR`` overrides both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPOSITORY_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
INSTALLED_WEIGHTS = Path(sys.prefix) / "share" / "colorizer" / "weights"


def default_weights_dir() -> Path:
    """``$COLORIZER_WEIGHTS_DIR``, else the repository's ``weights/``, else the installed copy."""
    if os.environ.get("COLORIZER_WEIGHTS_DIR"):
        return Path(os.environ["COLORIZER_WEIGHTS_DIR"])
    if REPOSITORY_WEIGHTS.is_dir():
        return REPOSITORY_WEIGHTS
    return INSTALLED_WEIGHTS
