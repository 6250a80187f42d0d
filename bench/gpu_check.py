"""``python -m bench.gpu_check [--out DIR]``: the prepared check for a machine with a CUDA GPU, in one call (well
under 10 minutes): the device path against the CPU's picture, photos per second at 1 and 12 megapixels, GPU memory,
the archive job on the GPU, and the tests that touch the device. Writes gpu_check.md and gpu_check.json to DIR
(default: $OUT, else the working folder) for bench/RESULTS.md.

Run it on the lent machine as: ``python -m bench.gpu_check --out "$OUT"``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def photo(megapixels: float) -> Image.Image:
    from skimage import data

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    return Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BICUBIC).convert("L")


def timed(colorizer, image: Image.Image, repeats: int) -> float:
    colorizer.colorize(image)  # warm-up: kernels, allocator
    if colorizer.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        colorizer.colorize(image)
    if colorizer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def save(out: Path, result: dict) -> None:
    """After each stage, so a run stopped at its time limit still returns what it measured."""
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    from colorizer import Colorizer
    from colorizer.weights import shipped_weights

    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--parity-only", action="store_true",
                        help="only the CPU-against-GPU picture of each shipped model (a run with other weights files)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
                    "cuda": torch.cuda.is_available()}
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        save(out, result)
        return 1
    result["gpu"] = torch.cuda.get_device_name(0)
    result["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1)

    # 1. parity: every shipped model's picture on the GPU (fp16 autocast) against the CPU's (fp32)
    sample = photo(0.25)
    parity = {}
    for name in sorted(shipped_weights()):
        try:
            cpu = np.asarray(Colorizer(name, device="cpu").colorize(sample), dtype=np.int16)
            gpu = np.asarray(Colorizer(name, device="cuda").colorize(sample), dtype=np.int16)
        except Exception as error:  # one model that cannot load there must not cost the rest of the check
            parity[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
        else:
            difference = np.abs(cpu - gpu)
            parity[name] = {"mean_abs": round(float(difference.mean()), 4), "max_abs": int(difference.max())}
        print("parity", name, parity[name], flush=True)
    result["parity_8bit_vs_cpu"] = parity
    save(out, result)
    if args.parity_only:
        return 0 if all("mean_abs" in p for p in parity.values()) else 1

    # 2. speed and memory of the default model, end to end (decode excluded: images are in memory)
    speed = []
    for megapixels in (1, 12, 50):
        image = photo(megapixels)
        row = {"megapixels": megapixels}
        for device in ("cuda", "cpu"):
            colorizer = Colorizer(device=device)
            torch.cuda.reset_peak_memory_stats()
            seconds = timed(colorizer, image, 5 if device == "cuda" else 1)
            row[f"{device}_s"] = round(seconds, 4)
            if device == "cuda":
                row["cuda_peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20)
        row["speedup"] = round(row["cpu_s"] / row["cuda_s"], 1)
        speed.append(row)
        print("speed", row, flush=True)
        result["speed"] = speed
        save(out, result)

    # 3. the archive job on the GPU: 40 photos of 1 MP through the CLI, one photo at a time and with the default
    # reading and writing threads
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "in").mkdir()
        base = photo(1)
        for index in range(40):
            base.rotate(index % 4 * 90, expand=True).save(folder / "in" / f"p{index:02d}.jpg", quality=92)
        result["archive_job"] = {}
        for threads in ("0", "default"):
            extra = [] if threads == "default" else ["--io-threads", threads]
            started = time.perf_counter()
            job = subprocess.run([sys.executable, "-m", "colorizer", "colorize", str(folder / "in"), "--out",
                                  str(folder / f"out-{threads}"), "--device", "cuda", *extra], cwd=ROOT,
                                 capture_output=True, text=True)
            result["archive_job"][f"io_threads_{threads}"] = {
                "returncode": job.returncode, "wall_s": round(time.perf_counter() - started, 1),
                "summary": job.stdout.strip().splitlines()[-3:], "stderr": job.stderr[-300:]}
            print("archive", threads, result["archive_job"][f"io_threads_{threads}"], flush=True)
    save(out, result)

    # 4. the tests that touch the device path
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "tests/test_inference.py",
                            "tests/test_models.py", "-k", "cuda or device or autocast or fp16"], cwd=ROOT,
                           capture_output=True, text=True)
    result["tests"] = {"returncode": tests.returncode, "tail": tests.stdout.strip().splitlines()[-3:]}
    print("tests", result["tests"], flush=True)

    save(out, result)
    lines = [f"## GPU check, {result['date']}: {result['gpu']} ({result['gpu_memory_gb']} GB), torch {torch.__version__}",
             "", "| MP | CUDA s (fp16 autocast) | CPU s | speed-up | GPU peak MB |", "|---|---|---|---|---|"]
    lines += [f"| {r['megapixels']} | {r['cuda_s']} | {r['cpu_s']} | {r['speedup']} | {r['cuda_peak_memory_mb']} |"
              for r in speed]
    measured = [p for p in parity.values() if "mean_abs" in p] or [{"mean_abs": None, "max_abs": None}]
    worst = max(measured, key=lambda p: p["mean_abs"] or 0)
    lines += ["", f"Parity with the CPU picture (8-bit RGB), worst model: mean {worst['mean_abs']}, "
              f"max {worst['max_abs']}. Archive job, 40 photos at 1 MP: "
              + "; ".join(f"{key}: {run['summary']}" for key, run in result["archive_job"].items()) + ". "
              f"Device tests: {result['tests']['tail']}."]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
