"""Writes demo/examples/: a dozen real black-and-white and faded historical photos for the app's examples and the
CLI's `samples`, downscaled (longest side 448 px, JPEG quality 85, no metadata), with SOURCES.md.

Usage: python scripts/make_examples.py ../shared/data/historical
The photos come from MIT-licensed colorization repositories (../shared/data/README.md).
"""

import argparse
from pathlib import Path

from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent.parent / "demo" / "examples"
CHOSEN = [  # (folder/file, caption): people, places, a landscape, a damaged print; 1850s-1950s
    ("deoldify/Mid1800sSisters.jpg", "Sisters, mid-1800s"),
    ("deoldify/1899SodaFountain.jpg", "A soda fountain, 1899"),
    ("deoldify/LondonStreets1900.jpg", "London streets, 1900"),
    ("deoldify/1909ParisFirstFemaleTaxisDriver.jpg", "Paris's first woman taxi driver, 1909"),
    ("deoldify/HelenKeller.jpg", "Helen Keller"),
    ("deoldify/1920sFarmKid.jpg", "A farm child, 1920s"),
    ("deoldify/CafeParis1928.jpg", "A cafe in Paris, 1928"),
    ("bigcolor/migrant_mother_1.jpg", "Migrant Mother, 1936"),
    ("bigcolor/ansel_adams3.jpg", "A landscape (Ansel Adams)"),
    ("bigcolor/einstein_1.jpg", "Albert Einstein"),
    ("deoldify/TimesSquare1955.jpg", "Times Square, 1955"),
    ("msold/old_w_scratch_a.jpg", "A scratched family photo"),
]
REPOSITORIES = {
    "deoldify": "DeOldify test images (github.com/jantic/DeOldify, MIT)",
    "bigcolor": "BigColor gray test images (github.com/KIMGEONUNG/BigColor, MIT)",
    "msold": "Bringing Old Photos Back to Life test images (github.com/microsoft/Bringing-Old-Photos-Back-to-Life, MIT)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("historical", help="folder of historical photos (../shared/data/historical)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for relative, caption in CHOSEN:
        with Image.open(Path(args.historical) / relative) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((448, 448), Image.Resampling.LANCZOS)
            name = Path(relative).stem.lower().replace("_", "-") + ".jpg"
            image.save(OUT / name, quality=85, optimize=True)
        rows.append(f"| {name} | {caption} | {REPOSITORIES[relative.split('/')[0]]}: `{relative}` |")
    (OUT / "SOURCES.md").write_text(
        "# Example photos\n\nReal black-and-white and faded photos, 1850s-1950s, downscaled to a longest side of 448 px "
        "(JPEG quality 85, no metadata) by `scripts/make_examples.py`. Each comes from an MIT-licensed colorization "
        "repository's test images, as gathered in the project's data folder.\n\n| file | caption | source |\n|---|---|---|\n"
        + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} photos to {OUT}")


if __name__ == "__main__":
    main()
