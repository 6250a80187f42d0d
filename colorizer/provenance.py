"""Labelling outputs as machine-coloured, and writing them with the source's metadata.

Every file Colorizer writes says what it is (the Brown paper asks for colorized photos to be labelled): an XMP packet
with IPTC's ``Iptc4xmpExt:DigitalSourceType`` = *composite with trained algorithmic media* and a ``dc:description``
naming the program, the model and its weights' SHA-256. PNG gets the packet as the standard ``XML:com.adobe.xmp``
iTXt chunk plus a plain ``Description`` iTXt chunk; JPEG as an APP1 XMP segment; TIFF as tag 700. The source photo's
SHA-256 goes in the packet too, which lets a resumed archive job recognise an output it already finished.

The source's EXIF (orientation reset: pixels are already upright), ICC profile (colour sources only: a gray profile
cannot describe RGB pixels) and resolution are carried over.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, PngImagePlugin

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "colorizer": "https://colorizer.invalid/ns/provenance/1.0/",  # the project's own fields; .invalid: not a URL
}
FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
SUFFIXES = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}
ALIASES = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "tiff": "tiff", "tif": "tiff"}
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Provenance:
    """What made a colorized image."""

    model: str
    weights_sha256: Optional[str]
    version: str
    source_sha256: Optional[str] = None

    def description(self) -> str:
        weights = f"weights sha256 {self.weights_sha256}" if self.weights_sha256 else "untrained weights"
        return f"Colorized by Colorizer {self.version} with {self.model} ({weights})"

    def xmp(self) -> bytes:
        fields = {
            "Iptc4xmpExt:DigitalSourceType": DIGITAL_SOURCE_TYPE,
            "xmp:CreatorTool": f"Colorizer {self.version}",
            "colorizer:Model": self.model,
            "colorizer:WeightsSHA256": self.weights_sha256 or "",
            "colorizer:SourceSHA256": self.source_sha256 or "",
        }
        namespaces = "".join(f"\n    xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in NAMESPACES.items()
                             if prefix not in ("x", "rdf"))
        attributes = "".join(f"\n    {name}={quoteattr(value)}" for name, value in fields.items())
        packet = (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            f'<x:xmpmeta xmlns:x="{NAMESPACES["x"]}">\n'
            f' <rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">\n'
            f'  <rdf:Description rdf:about=""{namespaces}{attributes}>\n'
            '   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f'{escape(self.description())}</rdf:li></rdf:Alt></dc:description>\n'
            "  </rdf:Description>\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>')
        return packet.encode("utf-8")


@dataclass(frozen=True)
class SourceMetadata:
    """The source photo's metadata worth keeping on its colorized version."""

    exif: Optional[bytes] = None
    icc_profile: Optional[bytes] = None
    dpi: Optional[tuple[float, float]] = None

    @classmethod
    def of(cls, image: Image.Image) -> "SourceMetadata":
        """From an opened (and already EXIF-transposed) source image."""
        exif = None
        if image.info.get("exif") or len(image.getexif()):
            tags = image.getexif()
            if ORIENTATION_TAG in tags:
                tags[ORIENTATION_TAG] = 1  # the pixels were rotated upright on reading
            exif = tags.tobytes() or None
        colour = image.mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "P")
        icc = image.info.get("icc_profile") if colour else None
        dpi = image.info.get("dpi")
        return cls(exif, icc or None, tuple(float(value) for value in dpi) if dpi else None)


def output_format(path: str | os.PathLike, format: Optional[str] = None) -> str:
    """png, jpeg or tiff: ``format`` when given, else from the file name."""
    if format:
        if format.lower() not in ALIASES:
            raise ValueError(f"unsupported output format {format!r}; choose one of {', '.join(FORMATS)}")
        return ALIASES[format.lower()]
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in ALIASES:
        return ALIASES[suffix]
    raise ValueError(f"cannot tell the output format from {str(path)!r}; name it .png, .jpg or .tif")


def save_image(image: Image.Image, path: str | os.PathLike, *, format: Optional[str] = None,
               provenance: Optional[Provenance] = None, source: Optional[SourceMetadata] = None,
               quality: int = 95, compress_level: int = 6) -> Path:
    """Writes ``image`` as PNG, JPEG or TIFF with the provenance label and the source's metadata."""
    path = Path(path)
    key = output_format(path, format)
    source = source or SourceMetadata()
    options: dict = {}
    if source.exif:
        options["exif"] = source.exif
    if source.icc_profile:
        options["icc_profile"] = source.icc_profile
    if source.dpi:
        options["dpi"] = source.dpi
    packet = provenance.xmp() if provenance else None
    if key == "png":
        options["compress_level"] = compress_level
        if provenance:
            chunks = PngImagePlugin.PngInfo()
            chunks.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8"))
            chunks.add_itxt("Description", provenance.description())
            chunks.add_itxt("Software", f"Colorizer {provenance.version}")
            options["pnginfo"] = chunks
    elif key == "jpeg":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")  # JPEG has no alpha
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if packet:
            options["xmp"] = packet
    else:
        options["compression"] = "tiff_deflate"
        if packet:  # Pillow's TIFF writer takes EXIF and XMP from one tag set: tiffinfo replaces exif
            tags = Image.Exif()
            if source.exif:
                tags.load(source.exif)
            tags[700] = packet
            options.pop("exif", None)
            options["tiffinfo"] = tags
    image.save(path, FORMATS[key], **options)
    return path


def read_xmp(path: str | os.PathLike) -> Optional[bytes]:
    """The XMP packet of a PNG, JPEG or TIFF file (None when it has none)."""
    with Image.open(path) as image:
        packet = image.info.get("xmp")
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return packet or None


def parse_xmp(packet: bytes) -> dict[str, str]:
    """The fields this module writes, by their prefixed names (``Iptc4xmpExt:DigitalSourceType``, ...)."""
    text = re.sub(rb"<\?xpacket[^>]*\?>", b"", packet)
    root = ElementTree.fromstring(text)
    fields = {}
    prefixes = {uri: prefix for prefix, uri in NAMESPACES.items()}
    for description in root.iter(f"{{{NAMESPACES['rdf']}}}Description"):
        for name, value in description.attrib.items():
            uri, _, local = name[1:].partition("}")
            if uri in prefixes and prefixes[uri] != "rdf":
                fields[f"{prefixes[uri]}:{local}"] = value
        for item in description.iter(f"{{{NAMESPACES['rdf']}}}li"):
            fields.setdefault("dc:description", item.text or "")
    return fields


def read_provenance(path: str | os.PathLike) -> Optional[dict[str, str]]:
    """The provenance fields of a file Colorizer wrote, or None when it carries no (readable) label."""
    try:
        packet = read_xmp(path)
        return parse_xmp(packet) if packet else None
    except (OSError, ElementTree.ParseError, ValueError):
        return None
