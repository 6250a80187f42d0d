"""The full-resolution Lab merge as one compiled pass over the pixels (Numba), rows split over the cores.

The torch merge (``inference.merge_full_resolution`` without Numba) runs some thirty element-wise kernels per
pixel, each a pass over memory; at 50 megapixels that was 1.4-2 s of a 2.5 s photo. Here each pixel is read once:
chroma interpolated from the network's grid, Lab -> XYZ -> linear RGB, and the same 16-bit lookup tables as
``color.gray_ab_to_srgb8`` for f(Y) and the sRGB encoding, so both paths agree to within one 8-bit level
(rounding order). Numba is optional: without it, or for LUV models, the torch merge runs.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import torch

from colorizer.color import _EPSILON, _KAPPA, WHITE_D65, _merge_tables

try:
    import numba
    from numba import njit, prange
except ImportError:  # optional dependency
    njit = None
else:
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # plain worker threads that sleep when idle: OpenMP's spinning ones made a 1 MP photo 1.4x slower when
        # another process kept a core busy (bench/RESULTS.md); as fast on an idle machine
        numba.config.THREADING_LAYER = "workqueue"


# One merge at a time: the workqueue thread pool aborts on concurrent launches, and a merge already keeps every core
# busy, so an app's threads lose nothing by queueing here.
_LAUNCH = threading.Lock()


def available() -> bool:
    return njit is not None


if njit is not None:
    @njit(parallel=True, cache=True, nogil=True)
    def _lab_merge(gray, gray_scale, ab, top, bottom, row_weight, left, right, col_weight, f_of_y, to_srgb,
                   rgb_from_xyz, out):  # pragma: no cover - compiled
        height, width = gray.shape
        table_top = np.float32(f_of_y.shape[0] - 1)
        grid_width = ab.shape[2]
        white_x, white_z = np.float32(WHITE_D65[0]), np.float32(WHITE_D65[2])
        epsilon, kappa = np.float32(_EPSILON), np.float32(_KAPPA)
        for i in prange(height):
            t, b, w = top[i], bottom[i], row_weight[i]
            row_a = np.empty(grid_width, np.float32)
            row_b = np.empty(grid_width, np.float32)
            for k in range(grid_width):  # this row's chroma on the network's grid
                row_a[k] = ab[0, t, k] * (1 - w) + ab[0, b, k] * w
                row_b[k] = ab[1, t, k] * (1 - w) + ab[1, b, k] * w
            for j in range(width):
                l, r, c = left[j], right[j], col_weight[j]
                a = row_a[l] * (1 - c) + row_a[r] * c
                bb = row_b[l] * (1 - c) + row_b[r] * c
                fy = f_of_y[np.int64(gray[i, j] * gray_scale + np.float32(0.5))]
                fx = fy + a * np.float32(1 / 500)
                fz = fy - bb * np.float32(1 / 200)
                y = fy * fy * fy
                if y <= epsilon:
                    y = (np.float32(116.0) * fy - np.float32(16.0)) / kappa
                x = fx * fx * fx
                if x <= epsilon:
                    x = (np.float32(116.0) * fx - np.float32(16.0)) / kappa
                z = fz * fz * fz
                if z <= epsilon:
                    z = (np.float32(116.0) * fz - np.float32(16.0)) / kappa
                x *= white_x
                z *= white_z
                for channel in range(3):
                    v = rgb_from_xyz[channel, 0] * x + rgb_from_xyz[channel, 1] * y + rgb_from_xyz[channel, 2] * z
                    v = min(max(v, np.float32(0.0)), np.float32(1.0))
                    out[i, j, channel] = to_srgb[np.int64(v * table_top + np.float32(0.5))]


def lab_merge(gray: np.ndarray, ab: torch.Tensor, rows: tuple, columns: tuple) -> np.ndarray:
    """Gray (H, W), float32 in [0, 1] or uint8, + ab in Lab units on the network's grid (2, hc, wc) + the
    linear-interpolation indices and weights of rows and columns (``inference._linear_indices``) -> uint8 sRGB
    (H, W, 3)."""
    f_of_y, to_srgb, rgb_from_xyz = _merge_tables()
    height, width = gray.shape
    if gray.dtype == np.uint8:
        scale = np.float32((f_of_y.shape[0] - 1) / 255)  # 257: an 8-bit level lands exactly on a table entry
    else:
        gray, scale = gray.astype(np.float32, copy=False), np.float32(f_of_y.shape[0] - 1)
    gray = np.ascontiguousarray(gray)  # one compiled version per dtype, not per memory layout
    out = np.empty((height, width, 3), dtype=np.uint8)
    top, bottom, row_weight = (t.numpy() for t in rows)
    left, right, col_weight = (t.numpy() for t in columns)
    with _LAUNCH:
        # as many threads as torch's intra-op setting: one knob for both (fewer degrade better under load)
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        _lab_merge(gray, scale, np.ascontiguousarray(ab.numpy(), dtype=np.float32), top, bottom,
                   row_weight.astype(np.float32), left, right, col_weight.astype(np.float32), f_of_y.numpy(),
                   to_srgb.numpy(), np.asarray(rgb_from_xyz, dtype=np.float32), out)
    return out
