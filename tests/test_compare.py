"""Comparing two colorizers on the same photos: the intervals cover what they claim, the verdict says what the
numbers say, and the command runs as a user would type it."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from colorizer import Colorizer
from colorizer.compare import compare_pair, mean_difference_interval, ratio_difference_interval, verdict

ROOT = Path(__file__).resolve().parent.parent


def _simulated_photos(rng, photos, psnr_shift=0.0):
    """Per-photo metrics of two decodings of one model: heavy-tailed photo-to-photo PSNR differences (Student t,
    3 df) around ``psnr_shift``, skewed colourfulness (gamma) with multiplicative photo noise. Returns the arrays
    and the population value of the colourfulness-ratio difference."""
    spread_a, spread_b = 0.3, 0.1
    psnr_a = rng.normal(22, 3, photos)
    psnr_b = psnr_a + psnr_shift + 0.3 * rng.standard_t(3, photos)
    truth = rng.gamma(4, 12, photos)
    cf_a = 0.87 * truth * np.exp(rng.normal(0, spread_a, photos))
    cf_b = cf_a * 1.03 * np.exp(rng.normal(0, spread_b, photos))
    ratio_difference = 0.87 * np.exp(spread_a ** 2 / 2) * (1.03 * np.exp(spread_b ** 2 / 2) - 1)
    return psnr_a, psnr_b, cf_a, cf_b, truth, ratio_difference


@pytest.mark.parametrize("photos", [18, 60])
def test_intervals_cover_the_true_difference_at_the_stated_rate(photos):
    rng = np.random.default_rng(photos)
    simulations, psnr_covered, ratio_covered = 2000, 0, 0
    for _ in range(simulations):
        psnr_a, psnr_b, cf_a, cf_b, truth, ratio_difference = _simulated_photos(rng, photos)
        _, low, high = mean_difference_interval(psnr_a, psnr_b)
        psnr_covered += low <= 0 <= high  # no true difference: this is also the type-I error rate
        _, low, high = ratio_difference_interval(cf_a, cf_b, truth)
        ratio_covered += low <= ratio_difference <= high
    # measured with 4,000 simulations: 0.953 / 0.943 at 18 photos, 0.952 / 0.943 at 60 (BCa bootstrap intervals
    # covered 0.88-0.93 here); 2,000 simulations put a coverage of 0.94 in [0.925, 0.97] with probability > 0.99
    assert 0.925 <= psnr_covered / simulations <= 0.97
    assert 0.925 <= ratio_covered / simulations <= 0.97


def test_intervals_find_a_real_gain():
    rng = np.random.default_rng(7)
    psnr_a, psnr_b, cf_a, cf_b, truth, _ = _simulated_photos(rng, 189, psnr_shift=0.15)
    estimate, low, high = mean_difference_interval(psnr_a, psnr_b)
    assert low > 0 and low < estimate < high
    estimate, low, high = ratio_difference_interval(cf_a, cf_b, truth)
    assert estimate == pytest.approx((cf_b - cf_a).mean() / truth.mean()) and low > 0


def _metrics(rows):
    return pd.DataFrame(rows, columns=["model", "photo", "source", "psnr", "gray_psnr", "ciede2000", "colorfulness",
                                       "cf_truth"])


def test_compare_pair_and_verdict_read_the_paired_photos():
    rng = np.random.default_rng(3)
    rows = []
    for index in range(40):
        source = "people" if index % 2 else "scenes"
        truth, gray = rng.uniform(30, 60), rng.uniform(18, 26)
        base_psnr, base_cf = gray + rng.normal(0, 1), truth * 0.8
        error = rng.uniform(10, 14)
        rows.append(("old", f"{source}/{index}.jpg", source, base_psnr, gray, error, base_cf, truth))
        rows.append(("new", f"{source}/{index}.jpg", source, base_psnr + 0.2 + rng.normal(0, 0.05), gray,
                     error - 1 + rng.normal(0, 0.1), base_cf * 1.1, truth))
    rows.append(("old", "scenes/only-old.jpg", "scenes", 30.0, 20.0, 5.0, 10.0, 40.0))  # not paired: left out
    metrics = _metrics(rows)
    overall = compare_pair(metrics, "old", "new")
    psnr = overall.loc[("all", "psnr_vs_gray")]
    assert psnr.photos == 40 and psnr.difference == pytest.approx(0.2, abs=0.03) and psnr.low > 0.15
    cf = overall.loc[("all", "cf_ratio")]
    assert cf.old == pytest.approx(0.8) and cf.new == pytest.approx(0.88) and cf.difference == pytest.approx(0.08)
    assert overall.loc[("all", "ciede2000")].difference == pytest.approx(-1.0, abs=0.05)
    assert verdict(overall, "old", "new") == "new beats old on both axes (and both 95% intervals exclude zero)."
    assert verdict(compare_pair(metrics, "new", "old"), "new", "old").startswith(
        "old does not beat new on both axes: no gain in PSNR or colourfulness")
    by_source = compare_pair(metrics, "old", "new", by_source=True)
    assert set(by_source.index.get_level_values("source")) == {"people", "scenes"}
    assert (by_source.xs("psnr_vs_gray", level="axis")["photos"] == 20).all()


def test_more_colour_than_the_truth_is_not_a_gain():
    rows = []
    for index in range(10):
        wobble = 0.1 * (index % 4)
        rows.append(("a", f"x/{index}.jpg", "x", 22.0 + wobble, 21.0, 10.0 + wobble, 50.0, 50.0))  # the truth's
        rows.append(("b", f"x/{index}.jpg", "x", 22.5 - wobble, 21.0, 10.0, 70.0 + wobble, 50.0))  # 1.4x it
    assert verdict(compare_pair(_metrics(rows), "a", "b"), "a", "b") == \
        "b does not beat a on both axes: no gain in colourfulness closer to the truth's."


def test_the_verdict_names_the_interval_that_is_unsure():
    rng = np.random.default_rng(5)
    straddling, unsure_psnr = [], []
    for index in range(30):
        gray, truth = rng.uniform(18, 26), 50.0
        straddling.append(("a", f"x/{index}.jpg", "x", gray + 0.5, gray, 10.0, truth * 1.2 + rng.normal(0, 1), truth))
        straddling.append(("b", f"x/{index}.jpg", "x", gray + 0.8 + rng.normal(0, 0.05), gray, 10.0,
                           truth * 0.95 + rng.normal(0, 1), truth))  # closer to 1 than a's 1.2, from below
        noise = 1.0 if index % 2 else -1.0  # a mean gain of 0.05 dB in +-1 dB of noise: the interval holds zero
        unsure_psnr.append(("a", f"x/{index}.jpg", "x", gray, gray, 10.0, truth * 0.7 + rng.normal(0, 1), truth))
        unsure_psnr.append(("b", f"x/{index}.jpg", "x", gray + 0.05 + noise, gray, 10.0,
                            truth * 0.9 + rng.normal(0, 1), truth))
    said = verdict(compare_pair(_metrics(straddling), "a", "b"), "a", "b")
    assert said.startswith("b beats a on both axes (but the two colourfulness ratios lie either side of 1"), said
    assert "PSNR" not in said
    said = verdict(compare_pair(_metrics(unsure_psnr), "a", "b"), "a", "b")
    assert said == "b beats a on both axes (but the PSNR interval holds zero: the gain may be noise).", said


def test_few_photos_get_a_point_estimate_without_an_interval():
    estimate, low, high = mean_difference_interval(np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    assert estimate == pytest.approx(0.5) and np.isnan(low) and np.isnan(high)


def test_from_spec_sets_the_decoding_and_names_it(tiny_weights):
    colorizer = Colorizer.from_spec(f"{tiny_weights}@0.5:0.25:1.3", device="cpu")
    config = colorizer.model.config
    assert (colorizer.temperature, config.undo_rebalancing, config.chroma_gain) == (0.5, 0.25, 1.3)
    assert colorizer.label == f"{tiny_weights.parent.name}@0.5:0.25:1.3"
    plain = Colorizer.from_spec(str(tiny_weights), device="cpu")
    assert plain.temperature is None and plain.model.config.chroma_gain == 1.0
    assert Colorizer.from_spec(f"{tiny_weights}@0.3", device="cpu").model.config.undo_rebalancing == 0.0
    with pytest.raises(ValueError, match="T, T:BETA:GAIN or T:BETA:GAIN:S"):
        Colorizer.from_spec(f"{tiny_weights}@warm", device="cpu")
    with pytest.raises(ValueError, match="regression model"):
        Colorizer.from_spec("unet@0.3", device="cpu")


def test_compare_command_prints_both_axes_per_source_and_a_verdict(tiny_weights, tmp_path):
    rng = np.random.default_rng(0)
    for source in ("scenes", "objects"):
        (tmp_path / "val" / source).mkdir(parents=True)
        for index in range(5):
            pixels = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
            Image.fromarray(pixels).resize((64, 48), Image.BICUBIC).save(tmp_path / "val" / source / f"{index}.png")
    out = tmp_path / "per_photo.csv"
    result = subprocess.run([sys.executable, "-m", "colorizer", "compare", str(tmp_path / "val"),
                             "--baseline", f"{tiny_weights}@0.38", "--challenger", f"{tiny_weights}@0.38:0:1.6",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "photos: 10" in lines[0]
    overall_cf = next(line for line in lines if line.startswith("all") and "cf_ratio" in line).split()
    assert float(overall_cf[5]) > 0  # a chroma gain of 1.6 adds colour
    assert any(line.startswith("objects") for line in lines) and any(line.startswith("scenes") for line in lines)
    assert "beat" in lines[-2] and lines[-1] == f"per-photo metrics: {out}"
    assert len(pd.read_csv(out)) == 20


def test_two_files_of_one_folder_are_told_apart_and_one_spec_twice_is_refused(tiny_weights, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "val").mkdir()
    for index in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "val" / f"{index}.png")
    run = tmp_path / "run"
    run.mkdir()
    for name in ("a", "b"):
        shutil.copy(tiny_weights, run / f"{name}.safetensors")

    def compare(baseline, challenger):
        return subprocess.run([sys.executable, "-m", "colorizer", "compare", str(tmp_path / "val"), "--baseline",
                               baseline, "--challenger", challenger], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)

    result = compare(str(run / "a.safetensors"), str(run / "b.safetensors"))
    assert result.returncode == 0, result.stderr
    assert "baseline: run (baseline)  challenger: run (challenger)" in result.stdout
    refused = compare(str(run / "a.safetensors"), str(run / "a.safetensors"))
    assert refused.returncode != 0 and "baseline and challenger are the same" in refused.stderr


def _balanced_metrics(rng, sizes=(80, 18, 12, 29, 29, 21)):
    """Two models on sources of the broad validation's sizes; per source a different true PSNR difference and spread
    (their mean over sources is 0), colourfulness as in ``_simulated_photos``; returns metrics and the true
    source-balanced colourfulness-ratio difference."""
    shifts = np.array([0.4, -0.3, 0.2, -0.5, 0.1, 0.1])
    spreads = np.array([0.2, 0.6, 0.3, 0.4, 0.5, 0.3])
    rows, ratio_differences = [], []
    for index, (photos, shift, spread) in enumerate(zip(sizes, shifts, spreads)):
        psnr_a, psnr_b, cf_a, cf_b, truth, ratio_difference = _simulated_photos(rng, photos)
        psnr_b = psnr_a + shift + spread * rng.standard_t(3, photos)
        ratio_differences.append(ratio_difference)
        for model, psnr, cf in (("a", psnr_a, cf_a), ("b", psnr_b, cf_b)):
            rows += [(model, f"s{index}/{i}", f"s{index}", psnr[i], 20.0, 5.0 + psnr[i] / 10, cf[i], truth[i])
                     for i in range(photos)]
    return _metrics(rows), float(np.mean(ratio_differences))


def test_source_balanced_intervals_cover_at_the_stated_rate():
    from colorizer.compare import balanced_pair

    rng = np.random.default_rng(11)
    simulations, psnr_covered, ratio_covered = 400, 0, 0
    for _ in range(simulations):
        metrics, ratio_difference = _balanced_metrics(rng)
        table = balanced_pair(metrics, "a", "b")
        psnr, ratio = table.loc[("balanced", "psnr_vs_gray")], table.loc[("balanced", "cf_ratio")]
        psnr_covered += psnr.low <= 0 <= psnr.high  # the balanced true difference is 0: also the type-I error
        ratio_covered += ratio.low <= ratio_difference <= ratio.high
    # 400 simulations: a true coverage of 0.95 lands in [0.92, 0.975] with probability ~0.99
    assert 0.92 <= psnr_covered / simulations <= 0.975
    assert 0.92 <= ratio_covered / simulations <= 0.975


def test_source_balanced_difference_is_the_mean_of_the_per_source_differences():
    from colorizer.compare import balanced_pair

    metrics, _ = _balanced_metrics(np.random.default_rng(3))
    balanced = balanced_pair(metrics, "a", "b")
    by_source = compare_pair(metrics, "a", "b", by_source=True)
    for axis in ("psnr_vs_gray", "cf_ratio", "ciede2000"):
        expected = by_source.xs(axis, level="axis")["difference"].mean()
        assert balanced.loc[("balanced", axis), "difference"] == pytest.approx(expected)
        pooled = compare_pair(metrics, "a", "b").loc[("all", axis), "difference"]
        assert abs(pooled - expected) > 1e-3  # sources differ in size and shift: the pooled mean is another number
