"""Could anything but colour tell a real stimulus from a colorized one? Cheap artefact features and a classifier
on them, cross-validated by photo.

Features per stimulus (uint8 RGB): the chroma step across 8- and 16-pixel block boundaries relative to the step
elsewhere (JPEG's 4:2:0 chroma blocks), and chroma against lightness high-frequency energy (chroma sharpness).
A study whose real photos carry such marks measures a detector, not colour; ``artefact_auc`` should be near 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
import torch
from scipy import stats

from colorizer.color import rgb_to_lab

FEATURES = ("block_step_8", "block_step_16", "chroma_hf", "chroma_to_luma_hf")


def _steps(channel: np.ndarray, axis: int) -> np.ndarray:
    return np.abs(np.diff(channel, axis=axis))


def artefact_features(rgb: np.ndarray) -> dict[str, float]:
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).double() / 255).numpy()
    lightness, chroma = lab[0], lab[1:]
    features = {}
    for period in (8, 16):
        on, off = [], []
        for channel in chroma:
            for axis in (0, 1):
                steps = _steps(channel, axis)  # step between index i and i + 1
                index = np.arange(steps.shape[axis])
                boundary = (index + 1) % period == 0
                take = (lambda mask: steps[mask]) if axis == 0 else (lambda mask: steps[:, mask])
                on.append(take(boundary).ravel())
                off.append(take(~boundary).ravel())
        features[f"block_step_{period}"] = float(np.mean(np.concatenate(on)) / (np.mean(np.concatenate(off)) + 1e-6))

    def high_frequency(channel: np.ndarray) -> float:
        laplacian = (4 * channel[1:-1, 1:-1] - channel[:-2, 1:-1] - channel[2:, 1:-1] - channel[1:-1, :-2]
                     - channel[1:-1, 2:])
        return float(np.mean(np.abs(laplacian)))

    chroma_hf = np.mean([high_frequency(c) for c in chroma])
    features["chroma_hf"] = float(np.log(chroma_hf + 1e-6))
    features["chroma_to_luma_hf"] = float(np.log(chroma_hf + 1e-6) - np.log(high_frequency(lightness) + 1e-6))
    return features


def artefact_auc(table: pd.DataFrame, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated AUC of a logistic regression telling ``is_real`` from ``FEATURES``, folds split by ``photo``
    (a photo's real and fake versions never sit on both sides of a fold). 0.5: the features tell nothing."""
    photos = table["photo"].unique()
    order = np.random.default_rng(seed).permutation(len(photos))
    fold_of = {photos[i]: rank % folds for rank, i in enumerate(order)}
    fold = table["photo"].map(fold_of).to_numpy()
    features = table[list(FEATURES)].to_numpy(dtype=float)
    target = table["is_real"].to_numpy(dtype=float)
    scores = np.empty(len(table))
    for k in range(folds):
        train, test = fold != k, fold == k
        mean, std = features[train].mean(0), features[train].std(0) + 1e-9
        design = sm.add_constant((features - mean) / std, has_constant="add")
        # a small ridge keeps a perfectly separating feature from driving the fit to infinity
        fit = sm.GLM(target[train], design[train], family=sm.families.Binomial()).fit_regularized(
            alpha=1e-2, L1_wt=0.0)  # ridge
        scores[test] = design[test] @ fit.params
    real, fake = scores[target == 1], scores[target == 0]
    return float(stats.mannwhitneyu(real, fake).statistic / (len(real) * len(fake)))
