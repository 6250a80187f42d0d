"""``python -m bench.under_load``: how the network's speed holds up when another process keeps cores busy.

For each backend (PyTorch, ONNX Runtime when installed) and intra-op thread count (1 .. cores), the median time of
the default model's ``colorize`` on a 1-megapixel photo, on a quiet machine and with ``--busy`` processes spinning
(a stand-in for a training run, a batch job or another visitor). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time


def spin(stop) -> None:
    while not stop.is_set():
        pass


def median_seconds(colorizer, image, repeats: int) -> float:
    colorizer.colorize(image)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        colorizer.colorize(image)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.under_load")
    parser.add_argument("--busy", type=int, default=1, help="spinning processes in the loaded runs (default 1)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    import torch
    from PIL import Image
    from skimage import data

    from colorizer import Colorizer

    image = Image.fromarray(data.astronaut()).resize((1154, 866)).convert("L")
    backends = ["torch"]
    try:
        import onnxruntime  # noqa: F401

        backends.append("onnx")
    except ImportError:
        pass
    cores = os.cpu_count() or 1
    rows = []
    for backend in backends:
        for threads in range(1, cores + 1):
            torch.set_num_threads(threads)
            colorizer = Colorizer(device="cpu", backend=backend)
            if backend == "onnx":
                from colorizer.onnx_backend import OnnxRunner

                colorizer.model.use_runtime(OnnxRunner(colorizer.model.runtime.path, threads=threads))
            quiet = median_seconds(colorizer, image, args.repeats)
            stop = multiprocessing.Event()
            spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(args.busy)]
            for process in spinners:
                process.start()
            time.sleep(0.5)
            try:
                loaded = median_seconds(colorizer, image, args.repeats)
            finally:
                stop.set()
                for process in spinners:
                    process.join()
            rows.append((backend, threads, quiet, loaded))
            print(f"{backend} threads={threads}: quiet {quiet:.3f} s, {args.busy} busy {loaded:.3f} s", flush=True)
    print(f"\n| backend | threads | quiet s | with {args.busy} busy process(es) s | slowdown |\n|---|---|---|---|---|")
    for backend, threads, quiet, loaded in rows:
        print(f"| {backend} | {threads} | {quiet:.3f} | {loaded:.3f} | x{loaded / quiet:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
