"""Store a shipped weights file in int8 where that is measured lossless, to keep ``weights/`` within its budget.

    python scripts/requantize.py weights/brown-vgg19.safetensors --val ../shared/data/val

The same test ``ship_recipe.py --precision int8`` applies: the int8 copy must change PSNR on the first
``--photos`` validation photos by at most 0.05 dB against the file as shipped. If it passes, the file is rewritten
(same tensors, int8 conv and linear weights with fp16 scales) and the ``| weights |`` row of its model card says so;
otherwise nothing is written.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402
from ship_recipe import MAX_INT8_LOSS_DB, _psnr  # noqa: E402

from colorizer import Colorizer  # noqa: E402
from colorizer.data import list_images  # noqa: E402
from colorizer.weights import load_weights, save_weights  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a shipped .safetensors file (fp16)")
    parser.add_argument("--val", required=True, help="validation photos (../shared/data/val)")
    parser.add_argument("--photos", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    target = Path(args.weights)
    model, info = load_weights(target)
    if info.training.get("precision") == "int8":
        print(f"{target.name} is int8 already")
        return 0
    sample = list_images(args.val)[: args.photos]
    with tempfile.TemporaryDirectory() as folder:
        quant = save_weights(model, Path(folder) / target.name, info, precision="int8")
        change = _psnr(Colorizer.from_file(quant, device="cpu"), sample) - \
            _psnr(Colorizer.from_file(target, device="cpu"), sample)
        before = target.stat().st_size
        if abs(change) > MAX_INT8_LOSS_DB:
            print(f"int8 changes PSNR by {change:+.3f} dB on {len(sample)} photos: {target.name} stays as it is")
            return 1
        target.write_bytes(quant.read_bytes())
    size = target.stat().st_size
    print(f"{target.name}: int8, PSNR {change:+.3f} dB on {len(sample)} photos, {before / 1e6:.1f} -> {size / 1e6:.1f} MB")
    card = target.with_suffix(".md")
    if card.is_file():
        row = (f"| weights | `{target.name}`, int8 (per-output-channel weights, fp16 scales; `scripts/requantize.py`): "
               f"PSNR {change:+.3f} dB against the fp16 file on the first {len(sample)} validation photos, "
               f"{size / 1e6:.1f} MB |")
        text, count = re.subn(r"^\| weights \|.*\|$", lambda _: row, card.read_text(), count=1, flags=re.M)
        if count:
            card.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
