"""The primary analysis, checked by simulation: studies with participant and photo variation (a Latin square as the
app assigns it), analysed thousands of times. The clustered intervals must cover the true population rate about
95% of the time and a true null must be rejected about 5% of the time; the naive Wilson interval is shown to fail,
which is why it is not the primary one. Deterministic (seeded): about 30 s on two cores."""

import numpy as np
import pandas as pd
import pytest

from study.clustered import condition_rates, pairwise_tests
from study.simulate import Variation, conditional_logit, synthetic_trials

REPEATS = 1000


def test_conditional_logit_gives_the_population_average():
    from scipy.special import expit

    mu = conditional_logit(0.4, 1.0)
    draws = np.random.default_rng(0).normal(0, 1.0, 400_000)
    assert expit(mu + draws).mean() == pytest.approx(0.4, abs=0.002)


def test_single_mode_coverage_and_type_one_error():
    """DeepColor's scale: 30 participants, 44 main photos; people sd 0.5, photos sd 0.7 on the log-odds; two models
    with the same true acceptance."""
    accept = {"real": 0.75, "a": 0.4, "b": 0.4}
    covered = {c: 0 for c in accept}
    naive_covered = 0
    rejected = 0
    for seed in range(REPEATS):
        frame = synthetic_trials(30, 44, accept, Variation(0.5, 0.7), seed=seed)
        rates = condition_rates(frame, "single").set_index("condition")
        for condition, truth in accept.items():
            covered[condition] += rates.loc[condition, "ci_low"] <= truth <= rates.loc[condition, "ci_high"]
        rejected += pairwise_tests(frame, ["a", "b"], repeats=1000)["p_value"].iloc[0] < 0.05
        from statsmodels.stats.proportion import proportion_confint

        group = frame[frame["condition"] == "a"]
        low, high = proportion_confint(group["judged_real"].sum(), len(group), method="wilson")
        naive_covered += low <= accept["a"] <= high
    coverage = {c: v / REPEATS for c, v in covered.items()}
    assert all(0.92 <= v <= 0.98 for v in coverage.values()), coverage
    assert 0.03 <= rejected / REPEATS <= 0.07, rejected / REPEATS
    assert naive_covered / REPEATS < 0.90  # the trial-level interval ignores clustering and is too narrow


def test_two_afc_fool_rate_at_chance_is_rejected_five_percent_of_the_time():
    accept = {"a": 0.5, "b": 0.5}
    rejected_half = rejected_pair = 0
    for seed in range(REPEATS):
        frame = synthetic_trials(30, 44, accept, Variation(0.5, 0.6), mode="2afc", seed=10_000 + seed)
        rejected_half += condition_rates(frame, "2afc").set_index("condition").loc["a", "p_vs_half"] < 0.05
        rejected_pair += pairwise_tests(frame, ["a", "b"], repeats=1000)["p_value"].iloc[0] < 0.05
    assert 0.03 <= rejected_half / REPEATS <= 0.07, rejected_half / REPEATS
    assert 0.03 <= rejected_pair / REPEATS <= 0.07, rejected_pair / REPEATS


def test_holm_p_values_are_not_floored_with_many_pairs():
    """Ten conditions (45 pairs): a difference no flip can match gets a Holm p well below 0.05, not the
    45 / (1 + repeats) floor of a random-flip test."""
    rows = []
    conditions = [f"m{i}" for i in range(10)]
    for photo in range(40):
        for participant in range(10):
            condition = conditions[(photo + participant) % 10]
            judged = condition == "m0" or (condition != "m1" and (photo + participant) % 3 == 0)
            rows.append({"participant_id": participant, "photo_id": photo, "condition": condition,
                         "judged_real": judged})
    table = pairwise_tests(pd.DataFrame(rows), conditions, repeats=1000)
    smallest = table.loc[(table["model_a"] == "m0") & (table["model_b"] == "m1"), "p_holm"].iloc[0]
    assert smallest < 0.005


def test_few_photos_get_an_exact_flip_p():
    from study.clustered import label_flip_test

    # four photos, each shown as a and as b: a always judged real, b never; all 16 flips enumerated
    frame = pd.DataFrame([{"photo_id": p, "condition": c, "judged_real": c == "a"} for p in range(4) for c in "ab"])
    assert label_flip_test(frame, "a", "b", repeats=1000) == pytest.approx(2 / 16)  # only all-kept and all-flipped
