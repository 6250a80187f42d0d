"""A colorizer's whole ``colorize`` path against ECCV16 (Zhang et al. 2016) run the same way.

ECCV16's own pipeline resizes the lightness to 256x256, predicts 313 ab-bin logits at 1/4 resolution, decodes them
(annealed mean), upsamples the chroma and joins it to the photo's full-resolution lightness: the same steps as
``Colorizer.colorize`` apart from the network (its bin decoding at 64x64 costs about what ours does). So ECCV16 end
to end is estimated as our measured total minus our network's forward pass plus ECCV16's forward pass at 256x256,
all timed in one process and interleaved, so a machine busy with other work slows both alike. Both networks run
in the channels-last (NHWC) layout, as ``Colorizer`` runs its model on CPU.

Usage: ``python -m bench.end_to_end [MODEL_SPEC ...]`` (default: the default shipped model) prints a table.
"""

from __future__ import annotations

import io
import statistics
import sys

import torch

PHOTO_SIZES = ((256, 256), (577, 432), (1154, 865))  # the network's own size; 0.25 MP; 1 MP (4:3)


def end_to_end_table(specs: list[str | None], repeats: int = 7,
                     sizes: tuple[tuple[int, int], ...] = PHOTO_SIZES, backend: str = "torch",
                     precision: str = "fp32") -> list[dict]:
    """One row per (model, photo size): medians of ``repeats`` interleaved runs of our whole path (decode JPEG,
    network at the working size, bin decoding, full-resolution merge, encode JPEG q95), our network's forward pass
    alone, and ECCV16's forward pass at 256x256; ECCV16's estimated total and the speed-up."""
    from colorizer import Colorizer
    from colorizer.imageio import load_photo
    from bench.peers import ECCV16
    from bench.scaling import gray_jpeg
    from bench.speed import _timed

    # ECCV16 in the layout that runs fastest on CPU, as Colorizer runs ours (NHWC: 4% faster for it here)
    eccv16 = ECCV16().eval().to(memory_format=torch.channels_last)
    eccv16_input = torch.randn(1, 1, 256, 256).contiguous(memory_format=torch.channels_last)
    rows = []
    for spec in specs:
        options = {"device": "cpu", "backend": backend, "precision": precision}
        colorizer = Colorizer.from_spec(spec, **options) if spec else Colorizer(**options)
        for width, height in sizes:
            encoded = gray_jpeg(width, height)
            lightness, _ = colorizer.network_input(load_photo(encoded).gray)

            def whole_path():
                image = colorizer.colorize(encoded)
                image.save(io.BytesIO(), "JPEG", quality=95)

            with torch.inference_mode():
                def ours():
                    colorizer.model(lightness)

                def theirs():
                    eccv16(eccv16_input)

                for warm_up in (whole_path, ours, theirs):
                    warm_up()
                totals, forwards, eccv16_forwards = [], [], []
                for _ in range(repeats):
                    totals.append(_timed(whole_path))
                    forwards.append(_timed(ours))
                    eccv16_forwards.append(_timed(theirs))
            total, forward, eccv16_forward = (statistics.median(t) * 1000 for t in (totals, forwards, eccv16_forwards))
            eccv16_total = total - forward + eccv16_forward
            label = colorizer.label + (f" (ONNX Runtime {precision})" if backend == "onnx" else "")
            rows.append({"model": label, "photo": f"{width}x{height}",
                         "network_input": f"{lightness.shape[-1]}x{lightness.shape[-2]}", "total_ms": total,
                         "forward_ms": forward, "eccv16_forward_ms": eccv16_forward, "eccv16_total_ms": eccv16_total,
                         "speedup_end_to_end": eccv16_total / total, "speedup_network": eccv16_forward / forward})
    return rows


COLUMNS = [("model", "model", ""), ("photo", "photo", ""), ("network_input", "network input", ""),
           ("total_ms", "ours end to end ms", ".0f"), ("forward_ms", "ours network ms", ".0f"),
           ("eccv16_forward_ms", "ECCV16 network ms @256", ".0f"), ("eccv16_total_ms", "ECCV16 end to end ms", ".0f"),
           ("speedup_end_to_end", "x ECCV16 end to end", ".2f"), ("speedup_network", "x ECCV16 network", ".2f")]


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import table

    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end")
    parser.add_argument("specs", nargs="*", help="model specs (default: the default shipped model)")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--megapixels", default=None,
                        help="comma-separated photo sizes in MP instead of 256 px, 0.25 MP and 1 MP, e.g. 1,12,50")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    sizes = PHOTO_SIZES
    if args.megapixels:
        sizes = tuple((round((float(mp) * 1e6 * 4 / 3) ** 0.5), round((float(mp) * 1e6 * 3 / 4) ** 0.5))
                      for mp in args.megapixels.split(","))
    rows = end_to_end_table(args.specs or [None], repeats=7 if not args.megapixels else 3, sizes=sizes,
                            backend=args.backend, precision=args.precision)
    print(table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
