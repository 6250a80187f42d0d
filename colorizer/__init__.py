"""Colorizer: automatic colorization of black-and-white photos.

>>> from colorizer import Colorizer
>>> Colorizer().colorize(Image.open("gray.jpg")).save("color.png")
"""

from colorizer.imageio import ImageTooLargeError, InvalidImageError
from colorizer.inference import DEFAULT_MODEL, Colorizer

__all__ = ["Colorizer", "DEFAULT_MODEL", "InvalidImageError", "ImageTooLargeError"]
__version__ = "0.1.0"
