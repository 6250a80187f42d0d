"""Whether one colorizer beats another on the same photos: paired differences with intervals over photos.

Every model colorizes every photo, so photo-to-photo variation (a hard portrait, an easy sky) cancels in the
per-photo differences; the intervals treat photos as the unit the claim generalises over. The two axes are the ones
the default model is judged on: PSNR against the gray baseline and colourfulness as a fraction of the ground truth's
(a ratio of means over photos); CIEDE2000 is reported beside them.

Intervals: a paired t interval for mean differences (scipy) and, for the colourfulness ratio, the ratio of means as
a weighted regression through the origin with HC3 standard errors and t quantiles (statsmodels). Checked by
simulation with heavy-tailed photo effects (tests/test_compare.py): BCa bootstrap intervals covered only 0.88-0.93
at 18-40 photos, these 0.94-0.96.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from colorizer.evaluate import evaluate_folder, source_of

MIN_PHOTOS_FOR_INTERVAL = 5  # fewer photos than this in a source: a point estimate only


def per_photo_metrics(colorizers: list, photos: list[tuple[str, object]], progress: bool = True) -> pd.DataFrame:
    """One row per (model label, photo): PSNR and CIEDE2000 of the output and of the gray baseline,
    colourfulness of the output and of the truth."""
    tables = []
    for colorizer in colorizers:
        evaluation, _ = evaluate_folder(colorizer, photos, progress=progress)
        table = evaluation.per_photo[["photo", "psnr", "gray_psnr", "ciede2000", "colorfulness", "cf_truth"]]
        tables.append(table.assign(model=colorizer.label, source=table["photo"].map(source_of)))
    return pd.concat(tables, ignore_index=True)


def mean_difference_interval(before: np.ndarray, after: np.ndarray,
                             confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean of after - before, low, high): a paired t interval over photos."""
    estimate = float(np.mean(after - before))
    if len(before) < MIN_PHOTOS_FOR_INTERVAL:
        return estimate, float("nan"), float("nan")
    interval = stats.ttest_rel(after, before).confidence_interval(confidence)
    return estimate, float(interval.low), float(interval.high)


def ratio_difference_interval(before: np.ndarray, after: np.ndarray, truth: np.ndarray,
                              confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean(after - before) / mean(truth), low, high): the ratio of means is the weighted least-squares slope of
    the per-photo difference on the truth through the origin with weights 1 / truth; its HC3 standard error is
    the ratio's linearised one, and t quantiles keep small sources honest."""
    difference = after - before
    estimate = float(difference.mean() / truth.mean())
    if len(before) < MIN_PHOTOS_FOR_INTERVAL:
        return estimate, float("nan"), float("nan")
    fit = sm.WLS(difference, truth, weights=1 / truth).fit(cov_type="HC3", use_t=True)
    low, high = fit.conf_int(1 - confidence)[0]
    return estimate, float(low), float(high)


def compare_pair(metrics: pd.DataFrame, baseline: str, challenger: str, confidence: float = 0.95,
                 by_source: bool = False) -> pd.DataFrame:
    """``challenger`` minus ``baseline`` per axis (and per source): both models' values, the difference and its
    interval. Only photos both models colorized count."""
    wide = metrics.pivot_table(index=["source", "photo"], columns="model",
                               values=["psnr", "gray_psnr", "ciede2000", "colorfulness", "cf_truth"])
    wide = wide.dropna()
    groups = wide.groupby(level="source") if by_source else [("all", wide)]
    rows = []
    for source, table in groups:
        (psnr_b, psnr_c), (cf_b, cf_c), (de_b, de_c) = (
            (table[(metric, baseline)].to_numpy(), table[(metric, challenger)].to_numpy())
            for metric in ("psnr", "colorfulness", "ciede2000"))
        gray, truth = table[("gray_psnr", baseline)].mean(), table[("cf_truth", baseline)].to_numpy()
        measured = {
            "psnr_vs_gray": (psnr_b.mean() - gray, psnr_c.mean() - gray,
                             mean_difference_interval(psnr_b, psnr_c, confidence)),
            "cf_ratio": (cf_b.mean() / truth.mean(), cf_c.mean() / truth.mean(),
                         ratio_difference_interval(cf_b, cf_c, truth, confidence)),
            "ciede2000": (de_b.mean(), de_c.mean(), mean_difference_interval(de_b, de_c, confidence)),
        }
        for axis, (value_b, value_c, (difference, low, high)) in measured.items():
            rows.append({"source": source, "axis": axis, "photos": len(table), baseline: value_b,
                         challenger: value_c, "difference": difference, "low": low, "high": high})
    return pd.DataFrame(rows).set_index(["source", "axis"])


def balanced_pair(metrics: pd.DataFrame, baseline: str, challenger: str, confidence: float = 0.95) -> pd.DataFrame:
    """``compare_pair``'s overall table with every source weighted the same (the mean of the per-source values).

    Intervals from one statsmodels fit per axis with a coefficient per source (HC3 errors, t quantiles) and a t test
    of the mean of the coefficients: PSNR and CIEDE2000 regress the paired difference on source indicators; the
    colourfulness ratio regresses the difference on truth x source indicators with weights 1 / truth, whose slopes
    are the per-source ratios of means (as ``ratio_difference_interval`` does for one source)."""
    wide = metrics.pivot_table(index=["source", "photo"], columns="model",
                               values=["psnr", "gray_psnr", "ciede2000", "colorfulness", "cf_truth"]).dropna()
    sources = wide.index.get_level_values("source")
    indicators = pd.get_dummies(sources).astype(float).to_numpy()  # (photos, sources)
    contrast = np.full(indicators.shape[1], 1 / indicators.shape[1])
    truth = wide[("cf_truth", baseline)].to_numpy()
    groups = wide.groupby(level="source")
    rows = []
    for axis, metric in (("psnr_vs_gray", "psnr"), ("cf_ratio", "colorfulness"), ("ciede2000", "ciede2000")):
        before, after = wide[(metric, baseline)].to_numpy(), wide[(metric, challenger)].to_numpy()
        if axis == "cf_ratio":
            fit = sm.WLS(after - before, indicators * truth[:, None], weights=1 / truth).fit(cov_type="HC3",
                                                                                             use_t=True)
            per_source = groups.apply(lambda t: (t[(metric, baseline)].mean() / t[("cf_truth", baseline)].mean(),
                                                 t[(metric, challenger)].mean() / t[("cf_truth", baseline)].mean()))
        else:
            fit = sm.OLS(after - before, indicators).fit(cov_type="HC3", use_t=True)
            gray = groups.apply(lambda t: t[("gray_psnr", baseline)].mean()) if axis == "psnr_vs_gray" else 0
            per_source = groups.apply(lambda t: (t[(metric, baseline)].mean(), t[(metric, challenger)].mean()))
            if axis == "psnr_vs_gray":
                per_source = pd.Series({s: (v[0] - gray[s], v[1] - gray[s]) for s, v in per_source.items()})
        test = fit.t_test(contrast)
        low, high = test.conf_int(alpha=1 - confidence)[0]
        value_b = float(np.mean([v[0] for v in per_source]))
        value_c = float(np.mean([v[1] for v in per_source]))
        rows.append({"source": "balanced", "axis": axis, "photos": len(wide), baseline: value_b, challenger: value_c,
                     "difference": float(np.squeeze(test.effect)), "low": float(low), "high": float(high)})
    return pd.DataFrame(rows).set_index(["source", "axis"])


def verdict(overall: pd.DataFrame, baseline: str, challenger: str, confidence: float = 0.95) -> str:
    """Plain words for ``compare_pair``'s overall table: does the challenger have the higher PSNR and colourfulness
    closer to the truth's, by the point estimates, and do both intervals exclude zero?"""
    label = overall.index.get_level_values("source")[0]  # "all" or "balanced"
    psnr, cf = overall.loc[(label, "psnr_vs_gray")], overall.loc[(label, "cf_ratio")]
    better_psnr = psnr.difference > 0
    closer_colour = abs(1 - cf[challenger]) < abs(1 - cf[baseline])
    below = max(cf[baseline], cf[challenger]) <= 1  # both duller than the truth: more colour is closer
    above = min(cf[baseline], cf[challenger]) >= 1
    colour_sure = (below and cf.low > 0) or (above and cf.high < 0)
    if better_psnr and closer_colour:
        if psnr.low > 0 and colour_sure:
            return f"{challenger} beats {baseline} on both axes (and both {confidence:.0%} intervals exclude zero)."
        unsure = [] if psnr.low > 0 else ["the PSNR interval holds zero"]
        if not colour_sure:
            # either side of the truth's, a sure difference in colourfulness says nothing about which is closer
            unsure.append("the colourfulness interval holds zero" if below or above else
                          "the two colourfulness ratios lie either side of 1, where the interval of their "
                          "difference cannot say which is closer")
        return f"{challenger} beats {baseline} on both axes (but {' and '.join(unsure)}: the gain may be noise)."
    lost = [name for name, won in (("PSNR", better_psnr), ("colourfulness closer to the truth's", closer_colour))
            if not won]
    return f"{challenger} does not beat {baseline} on both axes: no gain in {' or '.join(lost)}."


def format_comparison(table: pd.DataFrame, baseline: str, challenger: str) -> str:
    units = {"psnr_vs_gray": "{:+.3f}", "cf_ratio": "{:.3f}", "ciede2000": "{:.3f}"}
    lines = [f"{'source':16} {'axis':13} {'photos':>6} {'baseline':>9} {'challenger':>10} {'difference':>10}  "
             f"interval"]
    for (source, axis), row in table.iterrows():
        shown = units[axis]
        interval = "" if np.isnan(row.low) else f"[{row.low:+.3f}, {row.high:+.3f}]"
        lines.append(f"{source:16} {axis:13} {int(row.photos):6d} {shown.format(row[baseline]):>9} "
                     f"{shown.format(row[challenger]):>10} {row.difference:+10.3f}  {interval}")
    return "\n".join(lines)
