"""Shared fixtures: tiny images and a tiny trained-format checkpoint, all made on the fly."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(2)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: launches servers or browsers (still run in CI)")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A small context_unet checkpoint in the shipped file format (random weights, realistic structure)."""
    from colorizer import models
    from colorizer.weights import WeightsInfo, save_weights

    torch.manual_seed(0)
    model = models.create("context_unet", width=8)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(model, path, WeightsInfo("context_unet", model.config.to_dict(), working_size=64,
                                          description="tiny test model"))
    return path


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory, tiny_weights):
    """A weights folder holding the tiny model under the default model's name and as 'vivid'."""
    import shutil

    from colorizer.inference import DEFAULT_MODEL

    folder = tmp_path_factory.mktemp("shipped")
    shutil.copy(tiny_weights, folder / f"{DEFAULT_MODEL}.safetensors")
    shutil.copy(tiny_weights, folder / "vivid.safetensors")
    return folder


@pytest.fixture
def gradient_image():
    """A 61x47 RGB photo-like image with smooth colours."""
    y, x = np.mgrid[0:47, 0:61]
    rgb = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


@pytest.fixture(scope="session")
def tiny_colorizer(tiny_weights):
    from colorizer import Colorizer

    return Colorizer.from_file(tiny_weights, device="cpu")


def launch_app(app, mcp: bool = False):
    """Launches a built app on a free loopback port without blocking; returns its URL."""
    app.queue(default_concurrency_limit=8)
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True,
                           show_error=False, mcp_server=mcp)
    return url


@pytest.fixture(scope="session")
def postgres_server():
    from tests.postgres import start_postgres

    yield from start_postgres()


def new_postgres_database(server: str) -> str:
    """A fresh database on the test server; its URL."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.sqlite'}"
    return new_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def rgb_sizes_seen(monkeypatch):
    """The short side each RGB-head drawing is asked for, in order (Colorizer.predict_rgb spied on)."""
    from colorizer import inference

    seen = []
    original = inference.Colorizer.predict_rgb

    def spy(self, gray, size=None, saturation=1.0):
        seen.append(size)
        return original(self, gray, size, saturation)

    monkeypatch.setattr(inference.Colorizer, "predict_rgb", spy)
    return seen
