"""``python -m demo`` arguments, parsed before Gradio and PyTorch are imported (``--help`` answers at once)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from colorizer.paths import default_weights_dir  # no PyTorch: --help answers at once

WEIGHTS_DIR = default_weights_dir()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description="Serve the Colorizer app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--db", default=None, help="study database URL (default: STUDY_DB_URL or a SQLite file)")
    parser.add_argument("--weights-dir", default=str(WEIGHTS_DIR), help="folder of shipped .safetensors models")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="run the networks in PyTorch or in ONNX Runtime on the CPU (pip install colorizer[onnx]; "
                             "holds its speed better when the cores are shared, bench/RESULTS.md)")
    parser.add_argument("--study", default=None, help="study the Turing-test tab runs (default: the default study)")
    parser.add_argument("--mcp", action="store_true",
                        help="also serve colorization as MCP tools at /gradio_api/mcp/ (pip install \"gradio[mcp]\")")
    return parser.parse_args(argv)


def run_app() -> int:
    """The ``colorizer-app`` command: ``python -m demo`` once installed."""
    arguments = parse_args()
    from demo.app import main  # Gradio and PyTorch: seconds, so after --help has had its chance

    return main(args=arguments)
