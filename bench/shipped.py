"""Every shipped model's whole ``colorize`` path on one 1-megapixel photo, for the README's model table.

Each model is loaded as a user loads it (``Colorizer(name)``, PyTorch on the CPU) and timed on the same gray JPEG
(1154 x 865): decode, network at the working size, decoding, full-resolution merge, encode JPEG q95; median of
``repeats`` runs after one warm-up, models interleaved run by run so a machine busy with other work slows all alike.

Usage: ``python -m bench.shipped [--repeats 5] [--models NAME ...] [--out bench/shipped.json]`` prints a Markdown
table (``--models``: some of the shipped models, e.g. a new one beside the default).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
from pathlib import Path

PHOTO = (1154, 865)  # 1 MP, 4:3


def shipped_times(repeats: int = 5, photo: tuple[int, int] = PHOTO, weights_dir=None, names=None) -> list[dict]:
    import torch

    from bench.scaling import gray_jpeg
    from bench.speed import _timed
    from colorizer import Colorizer
    from colorizer.weights import WEIGHTS_DIR, shipped_weights

    weights_dir = weights_dir or WEIGHTS_DIR
    encoded = gray_jpeg(*photo)
    names = names or shipped_weights(weights_dir)
    colorizers = {name: Colorizer(name, device="cpu", weights_dir=weights_dir) for name in names}

    def run(colorizer):
        def whole_path():
            colorizer.colorize(encoded).save(io.BytesIO(), "JPEG", quality=95)
        return whole_path

    with torch.inference_mode():
        for colorizer in colorizers.values():
            run(colorizer)()  # warm-up
        times = {name: [] for name in colorizers}
        for _ in range(repeats):
            for name, colorizer in colorizers.items():
                times[name].append(_timed(run(colorizer)))
    return [{"model": name, "photo": f"{photo[0]}x{photo[1]}", "median_ms": round(1000 * statistics.median(values), 1),
             "parameters_m": round(sum(p.numel() for p in colorizers[name].model.parameters()) / 1e6, 2)}
            for name, values in times.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=None, help="these shipped models only (default: all)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = shipped_times(args.repeats, names=args.models)
    print("| model | params (M) | 1 MP end to end (ms) |\n|---|---:|---:|")
    for row in sorted(rows, key=lambda r: r["median_ms"]):
        print(f"| `{row['model']}` | {row['parameters_m']} | {row['median_ms']:.0f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
