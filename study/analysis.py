"""Study analysis with pandas: pure functions from a tidy per-trial DataFrame to summary DataFrames.

``load_trials`` is the only function that reads the database (``pd.read_sql`` of a ``select``).

Definitions (single-image mode): *public acceptance* of a condition = share of its images judged "real";
for real photos this is the ceiling. Signal detection per model treats real photos as signal: hit rate =
P("real" | real), false-alarm rate = P("real" | model's fake); d' = z(H) - z(FA), criterion c = -(z(H) + z(FA))/2,
with the log-linear correction (k + 0.5) / (n + 1). 2AFC: *fool rate* = share of pairs where the fake was
picked as real (50% = indistinguishable).
"""

from __future__ import annotations

import math
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from sqlalchemy import Engine, select
from sqlalchemy.orm import aliased

from study import clustered
from study.schema import Participant, Response, SourcePhoto, Stimulus, Study, Trial

METRICS = ("psnr", "ssim", "mse", "colorfulness")  # automatic metrics stored per stimulus (fake vs its real photo)


def load_trials(engine: Engine, study_name: str | None = None, include_simulated: bool = False) -> pd.DataFrame:
    """One row per trial (answered or not) of ``study_name`` (default: every study).

    Simulated participants (``study simulate``) are left out unless ``include_simulated``: they must never be
    counted as people."""
    other = aliased(Stimulus)
    query = (
        select(Study.name.label("study"), Study.mode, Participant.id.label("participant_id"), Participant.status,
               Participant.list_index, Participant.age_band, Participant.color_vision, Participant.screen,
               Participant.window_width, Participant.window_height, Participant.touch_only,
               Participant.is_simulated, Trial.id.label("trial_id"), Trial.position, Trial.kind, Trial.condition,
               Trial.real_side, SourcePhoto.id.label("photo_id"), SourcePhoto.label.label("photo"),
               Stimulus.public_id.label("stimulus_id"), Stimulus.is_real, Stimulus.sentinel_kind,
               Stimulus.psnr, Stimulus.ssim, Stimulus.mse, Stimulus.colorfulness,
               other.public_id.label("other_stimulus_id"), other.psnr.label("other_psnr"),
               other.ssim.label("other_ssim"), other.mse.label("other_mse"),
               other.colorfulness.label("other_colorfulness"),
               Response.answer, Response.judged_real, Response.correct, Response.response_ms,
               Response.intended_display_ms, Response.measured_display_ms, Response.created_at.label("answered_at"))
        .join(Participant, Participant.study_id == Study.id)
        .join(Trial, Trial.participant_id == Participant.id)
        .join(Stimulus, Stimulus.id == Trial.stimulus_id)
        .join(SourcePhoto, SourcePhoto.id == Stimulus.photo_id)
        .outerjoin(other, other.id == Trial.other_stimulus_id)
        .outerjoin(Response, Response.trial_id == Trial.id)
        .order_by(Participant.id, Trial.position)
    )
    if study_name:
        query = query.where(Study.name == study_name)
    if not include_simulated:
        query = query.where(Participant.is_simulated.is_(False))
    frame = pd.read_sql(query, engine)
    for column in ("judged_real", "correct", "is_real", "is_simulated"):
        frame[column] = frame[column].astype("boolean")
    # 2AFC: the fake of the pair carries the condition's metrics
    fake_first = frame["real_side"] == 1
    for metric in METRICS:
        frame[f"fake_{metric}"] = np.where(frame["mode"] == "2afc",
                                           np.where(fake_first, frame[metric], frame[f"other_{metric}"]), frame[metric])
    frame["interrupted"] = frame["answer"] == "interrupt"  # a timed trial cut short by a reload: left out
    frame["answered"] = frame["answer"].notna() & ~frame["interrupted"]
    return frame


# --- intervals and tests ----------------------------------------------------------------------------------------

def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval (statsmodels). Naive: it treats every trial as independent."""
    if n == 0:
        return (math.nan, math.nan)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return (float(low), float(high))


def cluster_bootstrap(frame: pd.DataFrame, value: str = "judged_real", repeats: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of ``value``, resampling participants and photos (two-way)."""
    if frame.empty:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    participants, p_index = np.unique(frame["participant_id"].to_numpy(), return_inverse=True)
    photos, q_index = np.unique(frame["photo_id"].to_numpy(), return_inverse=True)
    y = frame[value].to_numpy(dtype=float)
    p_weights = rng.multinomial(len(participants), np.full(len(participants), 1 / len(participants)), size=repeats)
    q_weights = rng.multinomial(len(photos), np.full(len(photos), 1 / len(photos)), size=repeats)
    weights = p_weights[:, p_index] * q_weights[:, q_index]  # (repeats, rows)
    totals = weights.sum(axis=1)
    means = np.divide(weights @ y, totals, out=np.full(repeats, np.nan), where=totals > 0)
    means = means[~np.isnan(means)]
    if means.size == 0:
        return (math.nan, math.nan)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def dprime(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> tuple[float, float]:
    """(d', criterion) with the log-linear correction."""
    if n_signal == 0 or n_noise == 0:
        return (math.nan, math.nan)
    hit_rate = (hits + 0.5) / (n_signal + 1)
    fa_rate = (false_alarms + 0.5) / (n_noise + 1)
    z_hit, z_fa = stats.norm.ppf(hit_rate), stats.norm.ppf(fa_rate)
    return (float(z_hit - z_fa), float(-(z_hit + z_fa) / 2))


# --- exclusions -------------------------------------------------------------------------------------------------

def is_straight_lining(counted: pd.DataFrame, max_share: float) -> bool:
    """One answer ("real", "fake", or one side) on at least ``max_share`` of the counted trials, and never the
    other answer where it was the right one: judged against the participant's own trial mix, so an accurate
    participant is never excluded however few trials call for the rarer answer (the old rule, share alone, removed
    a perfect participant who saw 4 real photos among 49)."""
    shares = counted["answer"].value_counts(normalize=True)
    if shares.empty or shares.iloc[0] < max_share:
        return False
    favourite = shares.index[0]
    other_was_right = counted[(counted["answer"] == favourite) != counted["correct"].astype(bool)]
    # trials where the favourite answer is wrong: answered with it (and wrong) or with the other answer (and right);
    # with none, nothing tells a bias from an accurate participant
    return len(other_was_right) > 0 and not bool((other_was_right["answer"] != favourite).any())


def participant_table(trials: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """One row per participant: progress, sentinel accuracy, median response time, and exclusion reasons."""
    rows = []
    for participant_id, group in trials.groupby("participant_id", sort=True):
        answered = group[group["answered"]]
        counted = answered[answered["kind"] != "practice"]
        sentinels = counted[counted["kind"] == "sentinel"]
        main = counted[counted["kind"] == "main"]
        interrupted = group["interrupted"] if "interrupted" in group else False
        complete = bool((group["answered"] | interrupted).all())  # an interrupted trial was shown: not unfinished
        sentinel_accuracy = float(sentinels["correct"].mean()) if len(sentinels) else math.nan
        median_ms = float(counted["response_ms"].median()) if counted["response_ms"].notna().any() else math.nan
        reasons = []
        if rules.get("require_complete", True) and not complete:
            reasons.append("incomplete")
        if len(sentinels) and sentinel_accuracy < rules.get("min_sentinel_accuracy", 1.0):
            reasons.append("failed sentinels")
        if not math.isnan(median_ms) and median_ms < rules.get("min_median_response_ms", 0):
            reasons.append("too fast")
        same_share = float(counted["answer"].value_counts(normalize=True).max()) if len(counted) else math.nan
        if len(counted) >= 5 and is_straight_lining(counted, rules.get("max_same_answer_share", 1.01)):
            reasons.append("same answer")
        rows.append({"participant_id": participant_id, "status": group["status"].iloc[0],
                     "list_index": group["list_index"].iloc[0], "trials": len(group), "answered": len(answered),
                     "complete": complete, "sentinel_accuracy": sentinel_accuracy,
                     "main_accuracy": float(main["correct"].mean()) if len(main) else math.nan,
                     "median_response_ms": median_ms, "same_answer_share": same_share,
                     "excluded": bool(reasons), "reasons": "; ".join(reasons)})
    columns = ["participant_id", "status", "list_index", "trials", "answered", "complete", "sentinel_accuracy",
               "main_accuracy", "median_response_ms", "same_answer_share", "excluded", "reasons"]
    return pd.DataFrame(rows, columns=columns)


def analysable(trials: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """Answered main trials of non-excluded participants, without implausibly fast single answers."""
    people = participant_table(trials, rules)
    kept_ids = set(people.loc[~people["excluded"], "participant_id"])
    frame = trials[trials["answered"] & (trials["kind"] == "main") & trials["participant_id"].isin(kept_ids)]
    fast = frame["response_ms"].notna() & (frame["response_ms"] < rules.get("fast_response_ms", 0))
    return frame[~fast].copy()


# --- summaries --------------------------------------------------------------------------------------------------

def acceptance_table(frame: pd.DataFrame, bootstrap_repeats: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per condition: n, judged real, acceptance (single) or fool rate (2AFC) and its 95% interval.

    ``ci_low``/``ci_high`` are the primary interval (logistic GLM, clustered by participant and photo; see
    ``study.clustered``); 2AFC adds ``p_vs_half``, the test of the fool rate against 50%. ``wilson_naive_*`` treats
    every trial as independent (too narrow when people or photos differ) and ``bootstrap_*`` resamples participants
    and photos; both are kept for comparison. Single mode adds acceptance relative to real photos, d' and criterion."""
    columns = ["condition", "n", "judged_real", "rate", "ci_low", "ci_high", "p_vs_half", "wilson_naive_low",
               "wilson_naive_high", "bootstrap_low", "bootstrap_high"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    mode = frame["mode"].iloc[0]
    real = frame[frame["condition"] == "real"]
    conditions = sorted(frame["condition"].unique(), key=lambda c: (c != "real", c))
    clustered_rates = clustered.condition_rates(frame, mode, conditions).set_index("condition")
    rows = []
    for condition in conditions:
        group = frame[frame["condition"] == condition]
        k, n = int(group["judged_real"].sum()), len(group)
        low, high = wilson_interval(k, n)
        boot_low, boot_high = (cluster_bootstrap(group, repeats=bootstrap_repeats, seed=seed) if bootstrap_repeats
                               else (math.nan, math.nan))
        primary = clustered_rates.loc[condition]
        row = {"condition": condition, "n": n, "judged_real": k, "rate": k / n, "ci_low": primary["ci_low"],
               "ci_high": primary["ci_high"], "p_vs_half": primary["p_vs_half"], "wilson_naive_low": low,
               "wilson_naive_high": high, "bootstrap_low": boot_low, "bootstrap_high": boot_high,
               "participants": group["participant_id"].nunique(), "photos": group["photo_id"].nunique()}
        if mode == "single":
            real_rate = real["judged_real"].mean() if len(real) else math.nan
            row["relative_to_real"] = (k / n) / real_rate if real_rate else math.nan
            if condition != "real":
                row["d_prime"], row["criterion"] = dprime(int(real["judged_real"].sum()), len(real), k, n)
        rows.append(row)
    return pd.DataFrame(rows)


def pairwise_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """Every pair of model conditions: difference in acceptance (or fool rate), the clustered test's p and the
    Holm-adjusted p (``study.clustered``)."""
    models = sorted(c for c in frame["condition"].unique() if c != "real") if len(frame) else []
    return clustered.pairwise_tests(frame, models)


def per_photo_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per photo and condition: n and acceptance, with the fake's automatic metrics."""
    grouped = frame.groupby(["photo", "condition"], sort=True)
    table = grouped.agg(n=("judged_real", "size"), judged_real=("judged_real", "sum"),
                        **{metric: (f"fake_{metric}", "first") for metric in METRICS}).reset_index()
    table["rate"] = table["judged_real"] / table["n"]
    return table


def metric_correlations(per_photo: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation between per-photo acceptance and each automatic metric, within each model.

    Within, not pooled: pooled over models, a correlation mostly says which model is better on both axes; within a
    model it asks whether the photos it colours with higher PSNR (or SSIM...) are also the ones people believe
    (OrGANic found its most realistic model scored worst on MSE and SSIM)."""
    rows = []
    fakes = per_photo[per_photo["condition"] != "real"]
    for condition, group in fakes.groupby("condition", sort=True):
        for metric in METRICS:
            usable = group[[metric, "rate"]].dropna()
            if len(usable) >= 3 and usable[metric].nunique() > 1 and usable["rate"].nunique() > 1:
                rho, p = stats.spearmanr(usable[metric], usable["rate"])
            else:
                rho, p = math.nan, math.nan
            rows.append({"condition": condition, "metric": metric, "spearman_rho": float(rho), "p_value": float(p),
                         "n_photos": len(usable)})
    return pd.DataFrame(rows, columns=["condition", "metric", "spearman_rho", "p_value", "n_photos"])


def exclusion_summary(trials: pd.DataFrame, rules: dict) -> dict:
    people = participant_table(trials, rules)
    return {"participants_before": int(len(people)), "participants_after": int((~people["excluded"]).sum()),
            "excluded_incomplete": int(people["reasons"].str.contains("incomplete").sum()),
            "excluded_failed_sentinels": int(people["reasons"].str.contains("sentinel").sum()),
            "excluded_too_fast": int(people["reasons"].str.contains("too fast").sum()),
            "excluded_same_answer": int(people["reasons"].str.contains("same answer").sum()),
            "trials_before": int((trials["answered"] & (trials["kind"] == "main")).sum()),
            "trials_after": int(len(analysable(trials, rules)))}
