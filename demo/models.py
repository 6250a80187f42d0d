"""The shipped models, loaded once per process and shared by every visitor."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from colorizer import Colorizer
from colorizer.inference import DEFAULT_MODEL
from colorizer.weights import PROJECT_GROUP, WEIGHTS_DIR, WeightsInfo, model_group, read_info, shipped_weights


class ModelPool:
    """Name -> ``Colorizer`` for every weights file in ``weights_dir``, each loaded on first use."""

    def __init__(self, weights_dir: str | os.PathLike = WEIGHTS_DIR, device: str | None = None,
                 backend: str = "torch"):
        self.weights_dir = Path(weights_dir)
        self.device, self.backend = device, backend  # backend "onnx": ONNX Runtime on the CPU (colorizer[onnx])
        paths = shipped_weights(self.weights_dir)
        infos = {name: read_info(path) for name, path in paths.items()}
        # this project's models first (the default model leading), then the source papers' systems
        order = lambda name: (model_group(infos[name]) != PROJECT_GROUP, name != DEFAULT_MODEL, name)  # noqa: E731
        self.paths = {name: paths[name] for name in sorted(paths, key=order)}
        self.infos: dict[str, WeightsInfo] = {name: infos[name] for name in self.paths}
        self._loaded: dict[str, Colorizer] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self.paths)

    @property
    def default(self) -> str | None:
        return next(iter(self.paths), None)

    def group(self, name: str) -> str:
        return model_group(self.infos[name])

    def describe(self, name: str) -> str:
        info = self.infos.get(name)
        return info.description if info and info.description else name

    def get(self, name: str | None) -> Colorizer:
        name = name or self.default
        if name not in self.paths:
            raise KeyError(f"unknown model {name!r}; available: {', '.join(self.paths) or 'none'}")
        with self._lock:  # two first requests must not load the same model twice
            if name not in self._loaded:
                self._loaded[name] = Colorizer(self.paths[name], device=self.device, backend=self.backend)
            return self._loaded[name]
