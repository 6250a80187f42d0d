"""``python -m bench``: every benchmark in one run; writes bench/RESULTS.md and bench/scaling.png.

Options: ``--sections peers,endtoend,scaling,training,storage,app,gpu`` (default all), ``--weights FILE`` (default: the
default shipped model), ``--out DIR`` (default: bench/).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

# RESULTS.md keeps everything from this line on (targets, before/after notes) when the benchmarks rerun
HAND_WRITTEN = "<!-- written by python -m bench above this line; by hand below (kept when it reruns) -->"
SECTIONS = ("peers", "endtoend", "scaling", "training", "storage", "app", "gpu")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table; ``columns`` are (key, header, format)."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format(row[k], f) if f else str(row[k]) for k, _, f in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--weights", default=None, help="weights of the model to time end to end")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    torch.set_num_threads(2)
    out = Path(args.out)
    started = time.time()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    parts = [f"# Benchmark results\n\nMachine: {machine()}.\n\nDate: {datetime.date.today()}; commit {commit or '?'};"
             f" command: `python -m bench{' ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`.\n"]

    if "peers" in sections:
        from bench.speed import inference_table

        print("peers and registry models...", flush=True)
        rows = inference_table()
        parts.append("## Networks side by side (one process, random weights, batch 1 unless stated)\n\n"
                     "Peers are rebuilt from their papers' layer tables (`bench/peers.py`). Speed-up is ECCV16's "
                     "median time at 256x256 over the model's.\n\n" + table(rows, [
                         ("model", "network", ""), ("group", "", ""), ("params_m", "params (M)", ".2f"),
                         ("gflops_256", "GFLOPs @256", ".2f"), ("ms_256", "ms @256", ".1f"), ("ms_512", "ms @512", ".1f"),
                         ("img_s_batch8", "img/s @256, batch 8", ".1f"), ("speedup_vs_eccv16_256", "x ECCV16 speed", ".2f")]))
    if "scaling" in sections:
        from bench.scaling import plot, scaling_table

        print("scaling with photo size...", flush=True)
        rows = scaling_table(args.weights)
        plot(rows, out / "scaling.png")
        parts.append("## End-to-end `Colorizer.colorize` against photo size\n\nDecode (JPEG) -> network at working size "
                     "256 -> full-resolution merge -> encode (JPEG q95); each size in a fresh process; peak RSS "
                     "includes the ~520 MB that importing torch (CUDA build) and the package costs.\n\n" + table(rows, [
                         ("megapixels", "MP", ".2f"), ("width", "width", ""), ("height", "height", ""),
                         ("decode_s", "decode s", ".3f"), ("network_s", "network s", ".3f"), ("merge_s", "merge s", ".3f"),
                         ("encode_s", "encode s", ".3f"), ("total_s", "total s", ".2f"),
                         ("peak_rss_mb", "peak RSS MB", ".0f")]) + "\n\n![time and memory against megapixels](scaling.png)")
    if "endtoend" in sections:
        from bench.end_to_end import COLUMNS, end_to_end_table

        print("end to end against ECCV16...", flush=True)
        parts.append("## End to end against ECCV16 (`python -m bench.end_to_end`)\n\nOur whole `colorize` path "
                     "(decode, network, bin decoding, full-resolution merge, encode); ECCV16's estimated as the same "
                     "path with its network (at 256x256, as its authors run it) in place of ours; medians of 7 "
                     "interleaved runs.\n\n" + table(end_to_end_table([args.weights]), COLUMNS))
    if "training" in sections:
        from bench.speed import training_table

        print("training throughput...", flush=True)
        rows, share = training_table()
        parts.append("## Training throughput at 128x128 (batch 16, Adam, channels_last)\n\n" + table(rows, [
            ("model", "model", ""), ("train_img_s_128", "images/s", ".1f")]) +
            f"\n\nDefault model `{share['model']}`: {share['forward_gflops_128']:.2f} GFLOPs forward per 128x128 "
            f"crop, so about {share['achieved_gflops_s']:.0f} GFLOP/s while training (3x forward), against "
            f"{share['matmul_peak_gflops_s']:.0f} GFLOP/s for a 2048x2048 fp32 matrix product measured in the same "
            f"run: {share['share_of_peak']:.0%} of peak.")
    if "storage" in sections:
        from bench.storage import storage_table

        print("study storage...", flush=True)
        rows = storage_table()
        parts.append("## Study storage: SQLite (WAL), answers through `StudyService`\n\nEach writer is a participant "
                     "answering as fast as possible (no thinking time), so latency includes waiting for the other "
                     "writers.\n\n" + table(rows, [
                         ("writers", "concurrent writers", ""), ("responses", "answers sent", ""),
                         ("stored", "rows stored", ""), ("duplicates", "duplicates", ""),
                         ("responses_per_s", "responses/s", ".0f"), ("p50_ms", "p50 ms", ".1f"), ("p99_ms", "p99 ms", ".1f")]))
    if "app" in sections:
        from bench.storage import app_latency

        print("app under simulated participants...", flush=True)
        result = app_latency(20)
        parts.append("## The Gradio app under 20 simulated participants (gradio_client on localhost)\n\n"
                     f"{result['answers']} answers; time from sending an answer to receiving the next image: "
                     f"p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms (mean {result['mean_ms']:.0f} ms).")
    if "gpu" in sections:
        from bench.speed import gpu_table

        rows = gpu_table()
        parts.append("## GPU path\n\n" + ("skipped: no CUDA device" if rows is None else table(rows, [
            ("model", "model", ""), ("variant", "variant", ""), ("ms_256_batch8", "ms per batch of 8 @256", ".2f")])))
    parts.append(f"\nTotal benchmark time: {(time.time() - started) / 60:.1f} minutes.\n")
    path = out / "RESULTS.md"
    previous = path.read_text() if path.exists() else ""
    kept = previous[previous.index(HAND_WRITTEN):] if HAND_WRITTEN in previous else ""
    path.write_text("\n\n".join(parts) + ("\n" + kept if kept else ""))
    print(f"wrote {out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
