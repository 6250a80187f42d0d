"""The primary analysis: acceptance per condition, and differences between conditions, with participants and photos
as crossed clusters.

Trials are not independent: the same participant answers many trials (some say "real" more often) and the same
photo appears in every condition (some photos are easy to colour). Treating trials as independent gave intervals
2.7x too narrow and a type-I error of 14-37% in simulated studies. Here every condition's log-odds come from one
logistic GLM (``judged_real ~ 0 + condition``) whose covariance is two-way cluster-robust over participants and photos
(Cameron, Gelbach & Miller 2011; statsmodels' ``cov_type="cluster"`` with two group columns), with the small-sample
correction and t tests on min(#participants, #photos) - 1 degrees of freedom. Per-condition rates are population
averages over participants and photos. Differences between two models are tested by flipping their labels photo by
photo (``label_flip_test``), which held its level where the clustered Wald test did not. The simulation test in
``tests/test_statistics.py`` checks the intervals' coverage and both tests' type-I error.
"""

from __future__ import annotations

import gc
import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import expit
from statsmodels.stats import multitest

ALPHA = 0.05


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p values (statsmodels' ``multipletests``). Its Holm branch ends in ``gc.collect()``, which cost
    0.15 s a call in a process holding PyTorch, and most of the test suite's time in simulations that call it per
    study; frozen objects (``gc.freeze``) are not scanned, so the collection is cheap and the arithmetic untouched."""
    gc.freeze()
    try:
        return multitest.multipletests(np.asarray(p_values, dtype=float), method="holm")[1]
    finally:
        gc.unfreeze()


def _fit(frame: pd.DataFrame, conditions: list[str]):
    import statsmodels.api as sm

    design = (frame["condition"].to_numpy()[:, None] == np.array(conditions)[None, :]).astype(float)
    groups = np.column_stack([pd.factorize(frame["participant_id"])[0], pd.factorize(frame["photo_id"])[0]])
    model = sm.GLM(frame["judged_real"].to_numpy(dtype=float), design, family=sm.families.Binomial())
    return model.fit(cov_type="cluster", use_t=True,
                     cov_kwds={"groups": groups, "use_correction": True, "df_correction": True})


def _usable(frame: pd.DataFrame) -> bool:
    return (len(frame) > 0 and frame["participant_id"].nunique() >= 2 and frame["photo_id"].nunique() >= 2
            and frame["judged_real"].nunique() == 2)


def _separated(frame: pd.DataFrame, conditions: list[str]) -> set[str]:
    """Conditions answered all "real" or all "fake": their log-odds are infinite, so no interval is defined."""
    rates = frame.groupby("condition")["judged_real"].mean()
    return {c for c in conditions if rates.get(c, 0.5) in (0.0, 1.0)}


def condition_rates(frame: pd.DataFrame, mode: str, conditions: list[str] | None = None) -> pd.DataFrame:
    """Per condition: rate, 95% interval clustered by participant and photo, and (2AFC) the test against 50%."""
    conditions = conditions or list(dict.fromkeys(frame["condition"]))
    columns = ["condition", "rate", "ci_low", "ci_high", "se_logit", "p_vs_half"]
    if not _usable(frame):
        return pd.DataFrame([{"condition": c, "rate": float(frame.loc[frame["condition"] == c, "judged_real"].mean())
                              if (frame["condition"] == c).any() else math.nan,
                              "ci_low": math.nan, "ci_high": math.nan, "se_logit": math.nan, "p_vs_half": math.nan}
                             for c in conditions], columns=columns)
    separated = _separated(frame, conditions)
    kept = [c for c in conditions if c not in separated]
    rows = {}
    if kept:
        result = _fit(frame[frame["condition"].isin(kept)], kept)
        low, high = np.asarray(result.conf_int(alpha=ALPHA)).T
        for i, condition in enumerate(kept):
            rows[condition] = {"condition": condition, "rate": float(expit(result.params[i])),
                               "ci_low": float(expit(low[i])), "ci_high": float(expit(high[i])),
                               "se_logit": float(result.bse[i]),
                               # 2AFC: a fool rate of 50% means people cannot tell the fake from the real photo
                               "p_vs_half": float(result.pvalues[i]) if mode == "2afc" else math.nan}
    for condition in separated:
        rate = float(frame.loc[frame["condition"] == condition, "judged_real"].mean())
        rows[condition] = {"condition": condition, "rate": rate, "ci_low": math.nan, "ci_high": math.nan,
                           "se_logit": math.nan, "p_vs_half": math.nan}
    return pd.DataFrame([rows[c] for c in conditions], columns=columns)


def label_flip_test(frame: pd.DataFrame, a: str, b: str, repeats: int = 4000, seed: int = 0) -> float:
    """Two-sided p of "models ``a`` and ``b`` are judged alike", by flipping the two labels photo by photo.

    In the Latin square every photo is shown as ``a`` to some participants and as ``b`` to others. If the two
    models are alike, the labels of a photo's a- and b-trials are exchangeable, so the difference in rates is
    compared with its distribution over random flips of each photo's labels (a sign-flip test over photos: it keeps
    each participant's and each photo's trials together and allows photos to differ in how each model does). The
    two-way cluster-robust Wald test of the same difference rejected a true null in 8% of simulated studies at 30
    participants; this test holds its level (tests/test_statistics.py)."""
    pair = frame[frame["condition"].isin((a, b))]
    if pair.empty or pair["condition"].nunique() < 2:
        return math.nan
    photos = pd.factorize(pair["photo_id"])[0]
    is_a = (pair["condition"] == a).to_numpy()
    judged = pair["judged_real"].to_numpy(dtype=float)
    count = len(np.unique(photos))
    # per photo: (real answers, trials) under each label
    sum_a = np.bincount(photos, weights=judged * is_a, minlength=count)
    n_a = np.bincount(photos, weights=is_a.astype(float), minlength=count)
    sum_b = np.bincount(photos, weights=judged * ~is_a, minlength=count)
    n_b = np.bincount(photos, weights=(~is_a).astype(float), minlength=count)

    def differences(flips: np.ndarray) -> np.ndarray:  # flips: (R, photos) of 0/1
        keep = 1 - flips
        rate_a = (keep @ sum_a + flips @ sum_b) / np.maximum(keep @ n_a + flips @ n_b, 1)
        rate_b = (keep @ sum_b + flips @ sum_a) / np.maximum(keep @ n_b + flips @ n_a, 1)
        return rate_a - rate_b

    observed = differences(np.zeros((1, count)))[0]
    if 2 ** count <= repeats:  # few photos: every flip, an exact p
        flips = ((np.arange(2 ** count)[:, None] >> np.arange(count)) & 1).astype(float)
        return float(np.mean(np.abs(differences(flips)) >= abs(observed) - 1e-12))
    flips = np.random.default_rng(seed).integers(0, 2, size=(repeats, count)).astype(float)
    extreme = np.sum(np.abs(differences(flips)) >= abs(observed) - 1e-12)
    return float((1 + extreme) / (1 + repeats))


def pairwise_tests(frame: pd.DataFrame, conditions: list[str], repeats: int = 4000) -> pd.DataFrame:
    """Every pair of ``conditions``: difference in rates, the photo-level label-flip test's p (``label_flip_test``)
    and the Holm-adjusted p (statsmodels)."""
    columns = ["model_a", "model_b", "rate_a", "rate_b", "difference", "p_value", "p_holm"]
    pairs = list(combinations(conditions, 2))
    if not pairs:
        return pd.DataFrame(columns=columns)
    rates = frame.groupby("condition")["judged_real"].mean()
    # a random-flip p is at least 1 / (1 + repeats); Holm multiplies the smallest by the number of pairs, so with many
    # pairs the floor would reach the significance level: 400 flips per pair keep Holm's floor at 0.0025
    repeats = max(repeats, 400 * len(pairs))
    rows = []
    for a, b in pairs:
        rows.append({"model_a": a, "model_b": b, "rate_a": float(rates.get(a, math.nan)),
                     "rate_b": float(rates.get(b, math.nan)),
                     "difference": float(rates.get(a, math.nan) - rates.get(b, math.nan)),
                     "p_value": label_flip_test(frame, a, b, repeats)})
    table = pd.DataFrame(rows, columns=columns[:-1])
    finite = table["p_value"].notna()
    table["p_holm"] = math.nan
    if finite.any():
        table.loc[finite, "p_holm"] = holm(table.loc[finite, "p_value"])
    return table
