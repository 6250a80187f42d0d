"""End-to-end ``Colorizer.colorize`` against photo size: decode -> network -> full-resolution merge -> encode.

Each size runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. Usage as a script:
``python -m bench.scaling PHOTO.jpg [WEIGHTS]`` prints one JSON line.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time

SIZES_MP = (0.25, 1, 4, 12, 24, 50)


def make_photo(megapixels: float) -> bytes:
    """A 4:3 JPEG of the given size (``gray_jpeg``)."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    return gray_jpeg(width, int(width * 3 / 4))


def gray_jpeg(width: int, height: int) -> bytes:
    """A gray JPEG: scikit-image's astronaut resized, with fine grain so it is photo-like."""
    import numpy as np
    from PIL import Image
    from skimage import data

    gray = Image.fromarray(data.astronaut()).convert("L").resize((width, height), Image.Resampling.BILINEAR)
    grain = np.random.default_rng(0).integers(-6, 7, (height, width), dtype=np.int16)
    gray = Image.fromarray(np.clip(np.asarray(gray, dtype=np.int16) + grain, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    gray.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries that over from the parent
    across fork and exec, so a child of a big benchmark process would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(photo_path: str, weights: str | None) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from colorizer import Colorizer
    from colorizer.imageio import load_photo
    from colorizer.inference import merge_full_resolution

    torch.set_num_threads(2)
    with open(photo_path, "rb") as handle:
        encoded = handle.read()
    colorizer = Colorizer(weights, device="cpu") if weights else Colorizer(device="cpu")
    colorizer.colorize(np.full((64, 48), 128, np.uint8))  # compiled kernels loaded: a server's steady state
    baseline_rss = peak_rss_mb()
    start = time.perf_counter()
    photo = load_photo(encoded)
    decoded = time.perf_counter()
    chroma, shape = colorizer.predict_chroma(photo.levels)
    network = time.perf_counter()
    rgb = merge_full_resolution(photo.levels, chroma, shape, getattr(colorizer.model, "output_stride", 1),
                                colorizer.color_space)
    merged = time.perf_counter()
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95)
    encoded_at = time.perf_counter()
    height, width = photo.levels.shape
    return {"megapixels": width * height / 1e6, "width": width, "height": height,
            "decode_s": decoded - start, "network_s": network - decoded, "merge_s": merged - network,
            "encode_s": encoded_at - merged, "total_s": encoded_at - start,
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": baseline_rss, "jpeg_input_mb": len(encoded) / 1e6, "checksum": int(np.asarray(rgb[::97, ::89]).sum())}


def scaling_table(weights: str | None = None) -> list[dict]:
    """The photos are made here, so each measuring subprocess only decodes a JPEG file."""
    import tempfile
    from pathlib import Path

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for megapixels in SIZES_MP:
            path = Path(folder) / f"{megapixels}.jpg"
            path.write_bytes(make_photo(megapixels))
            command = [sys.executable, "-m", "bench.scaling", str(path)] + ([weights] if weights else [])
            result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mp = [r["megapixels"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(mp, [r["total_s"] for r in rows], "o-", label="end to end")
    left.plot(mp, [r["network_s"] for r in rows], "s--", label="network only")
    left.plot(mp, [r["merge_s"] for r in rows], "^:", label="full-resolution merge")
    left.axhline(2.0, color="gray", linewidth=0.8, linestyle="--")
    left.set_xlabel("megapixels")
    left.set_ylabel("seconds (2 CPU cores)")
    left.legend(fontsize=8)
    right.plot(mp, [r["peak_rss_mb"] for r in rows], "o-", color="tab:red")
    right.axhline(1200, color="gray", linewidth=0.8, linestyle="--")
    right.set_xlabel("megapixels")
    right.set_ylabel("peak RSS (MB)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)))
