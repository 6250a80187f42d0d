"""ONNX export and the ONNX Runtime backend: every shipped network round-trips to within rounding of PyTorch's
picture; int8 graphs are made from calibration photos and run; the CLI takes the backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="ONNX Runtime is optional (pip install colorizer[onnx])")

from colorizer import Colorizer  # noqa: E402
from colorizer.weights import shipped_weights, weights_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("COLORIZER_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))


def sample_photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.astronaut()).resize((300, 300)),
            Image.fromarray(data.coffee()).convert("L").resize((333, 222)),  # odd sizes: padding and cropping
            Image.fromarray(data.chelsea()).resize((97, 131))]


def distinct_networks() -> dict[str, Path]:
    """One shipped name per weights file (a preset such as vivid decodes the same network differently, in the
    shared code)."""
    chosen: dict[Path, str] = {}
    for name, path in sorted(shipped_weights().items()):
        chosen.setdefault(weights_file(path).resolve(), name)
    return {name: path for path, name in chosen.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(distinct_networks()))
def test_every_shipped_network_round_trips(name):
    torch_backend = Colorizer(name, device="cpu")
    onnx_backend = Colorizer(name, backend="onnx")
    for photo in sample_photos():
        expected = np.asarray(torch_backend.colorize(photo), dtype=np.int16)
        got = np.asarray(onnx_backend.colorize(photo), dtype=np.int16)
        difference = np.abs(expected - got)
        assert difference.mean() < 0.05 and difference.max() <= 1, (name, difference.mean(), difference.max())


def test_int8_graph_from_calibration_photos(tmp_path, tiny_weights, gradient_image):
    folder = tmp_path / "calibration"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        gradient_image.rotate(index * 40, expand=True).save(folder / f"c{index}.png")
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(folder / "noise.png")
    with pytest.raises(FileNotFoundError, match="--precision int8"):
        Colorizer.from_file(tiny_weights, backend="onnx", precision="int8")
    made = subprocess.run([sys.executable, "-m", "colorizer", "export", "--weights", tiny_weights, "--precision",
                           "int8", "--calibration", folder, "--calibration-photos", "5"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    assert "calibrated on 5 photos" in made.stdout
    int8 = Colorizer.from_file(tiny_weights, backend="onnx", precision="int8")
    fp32 = Colorizer.from_file(tiny_weights, device="cpu")
    assert "QuantizeLinear" in {node.op_type for node in __import__("onnx").load(int8.model.runtime.path).graph.node}
    color, reference = int8.colorize(gradient_image), fp32.colorize(gradient_image)
    assert color.size == gradient_image.size
    # random weights are the hardest case for int8; the shipped model's check is on real photos (bench/RESULTS.md)
    assert np.abs(np.asarray(color, dtype=np.int16) - np.asarray(reference, dtype=np.int16)).mean() < 8
    assert "ONNX Runtime (int8)" in int8.provenance().description()


def test_cli_colorizes_through_onnx_runtime(tmp_path, tiny_weights, gradient_image):
    gradient_image.save(tmp_path / "photo.png")
    result = subprocess.run([sys.executable, "-m", "colorizer", "colorize", tmp_path / "photo.png", "--out",
                             tmp_path / "out", "--weights", tiny_weights, "--backend", "onnx"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    from colorizer.provenance import read_provenance

    assert "via ONNX Runtime (fp32)" in read_provenance(tmp_path / "out" / "photo.png")["dc:description"]


def test_app_pool_serves_through_onnx_runtime(weights_dir, gradient_image):
    from demo.colorize_tab import colorize_file
    from demo.models import ModelPool

    pool = ModelPool(weights_dir, backend="onnx")
    assert pool.get(None).model.runtime is not None  # the network runs in ONNX Runtime
    path = weights_dir.parent / "upload.png"
    gradient_image.save(path)
    result = colorize_file(str(path), None, 64, 1.0, pool)
    assert result.after.size[0] > 0 and result.path.exists()
