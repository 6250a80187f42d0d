"""``python -m bench.archive``: the archive job's photos per second (local engine, Ray) at 1 megapixel, and a job
killed three times at random moments, rerun to completion and checked photo by photo.

Photos are made from scikit-image's samples (cropped and scaled to ~1 MP, JPEG q92), so this runs anywhere. Prints a
Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def make_photos(folder: Path, count: int, width: int = 1154, height: int = 866, seed: int = 0) -> list[Path]:
    from study.stimuli import skimage_photos

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(rgb) for _, rgb in skimage_photos()]
    paths = []
    for index in range(count):
        source = sources[index % len(sources)]
        scale = rng.uniform(1.0, 1.3)
        big = source.resize((int(width * scale), int(height * scale)), Image.Resampling.BICUBIC)
        left, top = int(rng.integers(0, big.width - width + 1)), int(rng.integers(0, big.height - height + 1))
        photo = big.crop((left, top, left + width, top + height)).convert("L")
        path = folder / f"roll{index // 50:02d}" / f"photo{index:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo.save(path, quality=92)
        paths.append(path)
    return paths


def colorize(inputs: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "colorizer", "colorize", str(inputs), "--out", str(out), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def timed_run(inputs: Path, out: Path, *extra: str) -> dict:
    started = time.perf_counter()
    process = colorize(inputs, out, *extra)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(stderr[-2000:])
    written = int(re.search(r"done: (\d+) written", stdout).group(1))
    job_seconds = float(re.search(r"; ([\d.]+) s", stdout).group(1))
    rate = written / job_seconds if job_seconds else 0.0
    return {"written": written, "wall_s": wall, "job_s": job_seconds, "photos_per_s": rate}


def outputs(out: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in out.rglob("*.png") if not p.name.startswith(".")}


def killed_run(inputs: Path, out: Path, photos: list[Path], kills: int = 3, seed: int = 0) -> dict:
    """Kills the job ``kills`` times at random moments, then reruns it to completion and checks every photo."""
    from colorizer.archive import file_sha256
    from colorizer.provenance import DIGITAL_SOURCE_TYPE, read_provenance

    rng = random.Random(seed)
    seen: dict[str, tuple[int, int]] = {}
    rewritten = 0
    moments = []
    for _ in range(kills):
        process = colorize(inputs, out)
        moment = rng.uniform(4.0, 10.0)  # seconds after start (the first ~3 s import PyTorch), while photos remain
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = outputs(out)
        rewritten += sum(now.get(name, stamp) != stamp for name, stamp in seen.items())
        seen.update(now)
        moments.append((round(moment, 1), len(now)))
    final = timed_run(inputs, out)
    now = outputs(out)
    rewritten += sum(now[name] != stamp for name, stamp in seen.items())
    with sqlite3.connect(out / "colorizer-manifest.sqlite") as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state"))
        hashes = dict(db.execute("SELECT relpath, sha256 FROM inputs"))
    labelled = whole = 0
    for path in photos:
        relpath = path.relative_to(inputs).as_posix()
        output = out / (relpath.rsplit(".", 1)[0] + ".png")
        with Image.open(output) as image:
            image.load()
            whole += image.size == (1154, 866)
        label = read_provenance(output) or {}
        labelled += (label.get("Iptc4xmpExt:DigitalSourceType") == DIGITAL_SOURCE_TYPE
                     and label.get("colorizer:SourceSHA256") == hashes[relpath] == file_sha256(path))
    partial = len(list(out.rglob(".*partial*")))
    return {"kills": moments, "final": final, "outputs": len(now), "rewritten": rewritten, "states": states,
            "labelled": labelled, "whole": whole, "partial": partial}


def main(argv: list[str] | None = None) -> int:
    from colorizer.archive import default_io_threads

    parser = argparse.ArgumentParser(prog="python -m bench.archive")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--speed-photos", type=int, default=60, help="photos for the photos-per-second runs")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--load", default="quiet", help="what else ran on the machine (written beside the numbers)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as folder:
        folder = Path(folder)
        photos = make_photos(folder / "in", args.photos)
        speed_in = folder / "speed"
        for path in photos[: args.speed_photos]:
            target = speed_in / path.relative_to(folder / "in")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        plain = timed_run(speed_in, folder / "plain", "--io-threads", "0")
        local = timed_run(speed_in, folder / "local")
        ray = None if args.no_ray else timed_run(speed_in, folder / "ray", "--engine", "ray")
        killed = killed_run(folder / "in", folder / "killed", photos)
    print(f"## Archive job at 1 MP, {datetime.date.today()} ({args.load})\n")
    print(f"{args.speed_photos} photos of 1154x866 (gray JPEG q92 made from scikit-image's samples), default model, "
          "PNG out with provenance, `python -m colorizer colorize FOLDER --out OUT`:\n")
    print("| engine | photos/s | job s | wall s (with start-up) |\n|---|---|---|---|")
    print(f"| local, one photo at a time (`--io-threads 0`) | {plain['photos_per_s']:.2f} | {plain['job_s']:.1f} | "
          f"{plain['wall_s']:.1f} |")
    print(f"| local, reading and writing on {default_io_threads()} thread(s) (default) | {local['photos_per_s']:.2f} | "
          f"{local['job_s']:.1f} | {local['wall_s']:.1f} |")
    if ray:
        print(f"| Ray Data, local cluster | {ray['photos_per_s']:.2f} | {ray['job_s']:.1f} | {ray['wall_s']:.1f} |")
    print(f"\nKilled {len(killed['kills'])} times (SIGKILL at seconds, outputs by then: {killed['kills']}), then rerun "
          f"to completion ({killed['final']['written']} written in the last run): {killed['outputs']} outputs of "
          f"{args.photos}, {killed['rewritten']} rewritten, {killed['whole']} whole at full size, "
          f"{killed['labelled']} with readable provenance naming their source's hash, {killed['partial']} partial "
          f"files left, manifest states {killed['states']}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
