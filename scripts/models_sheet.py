"""The same photos colorized by every shipped model, beside the gray input and the ground truth: docs/models_sheet.jpg.

    python scripts/models_sheet.py [--photos study/default_photos] [--count 6] [--out docs/models_sheet.jpg]

Columns: gray input, one per shipped model (this project's first, then the source papers'), ground truth. Rows:
``--count`` photos of the folder, evenly spaced in its sorted listing (the default folder is held out from all
training). Each model works at its own working size; outputs are at the photo's resolution.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from colorizer import Colorizer  # noqa: E402
from colorizer.data import list_images  # noqa: E402
from colorizer.imageio import GrayPhoto, load_photo  # noqa: E402
from demo.models import ModelPool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=str(ROOT / "study" / "default_photos"))
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--out", default=str(ROOT / "docs" / "models_sheet.jpg"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pool = ModelPool()
    names = pool.names()
    paths = list_images(args.photos)
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, args.count).round().astype(int)]
    columns = ["gray input", *names, "ground truth"]
    figure, axes = plt.subplots(len(chosen), len(columns), figsize=(1.6 * len(columns), 1.7 * len(chosen) + 0.4),
                                squeeze=False)
    colorizers: dict[str, Colorizer] = {name: pool.get(name) for name in names}
    for row, path in enumerate(chosen):
        photo = load_photo(path)
        gray = GrayPhoto(photo.gray, None, None)
        images = [np.repeat((photo.gray * 255).round().astype(np.uint8)[..., None], 3, axis=2)]
        images += [np.asarray(colorizers[name].colorize_photo(gray)) for name in names]
        images.append(photo.rgb)
        for column, image in enumerate(images):
            axis = axes[row][column]
            axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                label = columns[column]
                group = f"\n({pool.group(label).lower()})" if label in names else ""
                axis.set_title(label + group, fontsize=7)
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80, pil_kwargs={"quality": 85})
    print(f"wrote {args.out}: {len(chosen)} photos x {len(names)} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
