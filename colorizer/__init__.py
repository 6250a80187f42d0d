"""Colorizer: automatic colorization of black-and-white photos.

>>> from colorizer import Colorizer
>>> colorizer = Colorizer()
>>> colorizer.save(colorizer.colorize(Image.open("gray.jpg")), "color.png")  # labelled as machine-coloured
"""

__all__ = ["Colorizer", "DEFAULT_MODEL", "InvalidImageError", "ImageTooLargeError", "MissingExtraError",
           "MultiFrameWarning"]
__version__ = "0.1.0"


class MissingExtraError(RuntimeError):
    """An optional part was asked for (Ray, ONNX Runtime) whose package is not installed; says what to install."""

_LAZY = {"Colorizer": "colorizer.inference", "DEFAULT_MODEL": "colorizer.inference",
         "InvalidImageError": "colorizer.imageio", "ImageTooLargeError": "colorizer.imageio",
         "MultiFrameWarning": "colorizer.imageio"}


def __getattr__(name: str):
    """Imported on first use, so ``colorizer.paths`` and ``--help`` load without PyTorch."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'colorizer' has no attribute {name!r}")
