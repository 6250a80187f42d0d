"""Makes study/default_photos: the default study's stimulus set, held out from all training.

50 photos drawn (seeded) from ../shared/data/val (40 of Sun & Hays' 80 scene photos, 10 of McMaster's 18), each
cut to its centre square and downscaled to the stimulus size with Lanczos, saved as JPEG quality 95 with no
metadata. ``../shared/data/train`` (the only folder any model here trains on) holds no near-duplicate of a val
photo (see ../shared/data/README.md). Writes SOURCES.md with each file's source and terms.

    python scripts/make_default_photos.py --val ../shared/data/val
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent.parent / "study" / "default_photos"
SOURCES = {
    "sunhays80": ("Sun & Hays scene photos (SUN database test set)", "research use", 40),
    "mcmaster": ("McMaster colour test set", "research use", 10),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", required=True, help="../shared/data/val")
    parser.add_argument("--size", type=int, default=320, help="side of the stored square (the stimulus size)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    lines = ["# Sources of the default study's photos", "",
             "Held out from all training: drawn from `../shared/data/val`; no model of this project trains on it, and "
             "`../shared/data/train` holds no near-duplicate of it. Each photo's centre square was downscaled to "
             f"{args.size} px (Lanczos) and saved as JPEG quality 95 without metadata by "
             f"`scripts/make_default_photos.py` (seed {args.seed}). Research use only, as the sources' terms say.", "",
             "| file | source | original file | terms |", "|---|---|---|---|"]
    for folder, (source, terms, count) in SOURCES.items():
        files = sorted((Path(args.val) / folder).glob("*.jpg"), key=lambda p: p.name)
        for path in sorted(rng.sample(files, count), key=lambda p: p.name):
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
                side = min(image.size)
                left, top = (image.width - side) // 2, (image.height - side) // 2
                square = image.crop((left, top, left + side, top + side)).resize((args.size, args.size),
                                                                                 Image.Resampling.LANCZOS)
            name = f"{folder}-{path.stem}.jpg"
            square.save(OUT / name, quality=95)
            lines.append(f"| {name} | {source} | {folder}/{path.name} | {terms} |")
    (OUT / "SOURCES.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {sum(c for *_, c in SOURCES.values())} photos to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
