"""Choosing the decoding: the sweep decodes as colorizing does, and the rule picks what it says."""

import pandas as pd
import pytest
from PIL import Image

from colorizer import Colorizer
from colorizer.data import held_out_photos, named_held_out, named_photos, split_holdout, list_images
from colorizer.evaluate import evaluate_folder
import torch

from colorizer.tuning import DECODING, choose_decoding, decoding_sweep, frontier, psnr_at_colourfulness


@pytest.fixture
def sources(tmp_path):
    from skimage import data

    for source, names in (("scenes", ("astronaut", "coffee")), ("animals", ("chelsea",))):
        (tmp_path / "val" / source).mkdir(parents=True)
        for name in names:
            Image.fromarray(getattr(data, name)()).resize((80, 72)).save(tmp_path / "val" / source / f"{name}.png")
    return tmp_path / "val"


def test_sweep_matches_evaluating_at_each_decoding(tiny_weights, sources):
    colorizer = Colorizer.from_file(tiny_weights, device="cpu")
    torch.manual_seed(1)  # uneven rebalancing weights, so undoing them changes the colours
    colorizer.model.bins.set_rebalancing(torch.rand(colorizer.model.bins.count) ** 4)
    photos = named_photos(sources)
    config = colorizer.model.config
    config.prior_shift = (2 * torch.randn(colorizer.model.bins.count)).tolist()
    sweep = decoding_sweep(colorizer, photos, (0.3, 1.0), undo_rebalancing=(0.0, 0.7), gains=(1.0, 1.6),
                           prior_corrections=(0.0, 0.8), progress=False)
    assert sorted(sweep["source"].unique()) == ["animals", "scenes"] and len(sweep) == 3 * 16
    for (temperature, beta, gain, correction), swept in sweep.groupby(list(DECODING)):
        colorizer.temperature, config.undo_rebalancing, config.chroma_gain = temperature, beta, gain
        config.prior_correction = correction
        evaluation, _ = evaluate_folder(colorizer, photos, progress=False)
        measured = evaluation.per_photo.set_index("photo")
        swept = swept.set_index("photo")
        pd.testing.assert_series_equal(swept["psnr"], measured["psnr"], check_names=False)
        pd.testing.assert_series_equal(swept["colorfulness"], measured["colorfulness"], check_names=False)
    at = sweep[(sweep.chroma_gain == 1) & (sweep.temperature == 0.3)].set_index(list(DECODING) + ["photo"])
    plain, undone, shifted = (at.xs(key, level=("undo_rebalancing", "prior_correction"))["colorfulness"].to_numpy()
                              for key in ((0.0, 0.0), (0.7, 0.0), (0.0, 0.8)))
    assert not (plain == undone).all() and not (plain == shifted).all()


def _table(rows):
    """Rows (T, beta, gain, psnr_vs_gray, cf_ratio), no prior correction, or (T, beta, gain, S, psnr, cf)."""
    rows = [row if len(row) == 6 else (*row[:3], 0.0, *row[3:]) for row in rows]
    index = pd.MultiIndex.from_tuples([row[:4] for row in rows], names=list(DECODING))
    return pd.DataFrame({"psnr_vs_gray": [row[4] for row in rows], "cf_ratio": [row[5] for row in rows]}, index=index)


def test_rule_takes_the_best_psnr_among_colourful_enough_decodings():
    table = _table([(0.2, 0, 1, -0.4, 0.96), (0.3, 0, 1, -0.1, 0.91), (0.5, 0, 1, 0.2, 0.85), (0.7, 0, 1, 0.3, 0.78),
                    (0.5, 0.25, 1.3, 0.0, 0.92)])
    choice = choose_decoding(table, min_cf=0.9)
    assert (choice.temperature, choice.undo_rebalancing, choice.chroma_gain, choice.meets_rule) == (0.5, 0.25, 1.3, True)
    assert choice.label() == "T=0.5, undo rebalancing 0.25, chroma gain 1.3"
    assert choose_decoding(table, min_cf=0.8).decoding == {"temperature": 0.5, "undo_rebalancing": 0.0,
                                                           "chroma_gain": 1.0, "prior_correction": 0.0}
    fallback = choose_decoding(table, min_cf=0.99)
    assert (fallback.temperature, fallback.meets_rule, fallback.label()) == (0.2, False, "T=0.2")
    corrected = choose_decoding(_table([(0.5, 0.25, 1.3, -0.1, 0.95), (0.45, 0, 1.6, 0.5, 0.1, 0.91)]))
    assert corrected.decoding["prior_correction"] == 0.5
    assert corrected.label() == "T=0.45, chroma gain 1.6, prior correction 0.5"


def test_psnr_at_equal_colourfulness_follows_the_pareto_frontier():
    # (0.5, 0, 1) is dominated by (0.5, 0.25, 1.3): more colourful and higher PSNR, so it is not on the frontier
    table = _table([(0.2, 0, 1, -0.4, 0.96), (0.3, 0, 1, -0.1, 0.91), (0.5, 0, 1, -0.05, 0.85),
                    (0.7, 0, 1, 0.3, 0.78), (0.5, 0.25, 1.3, 0.0, 0.90)])
    at = psnr_at_colourfulness(table, levels=(0.8, 0.9, 0.935, 0.96, 0.97, 0.7))
    assert at[0.9] == pytest.approx(0.0)  # on a point
    assert at[0.935] == pytest.approx(-0.25)  # halfway between (0.91, -0.1) and (0.96, -0.4)
    assert at[0.8] == pytest.approx(0.3 + (0.0 - 0.3) * (0.8 - 0.78) / (0.90 - 0.78))  # skips the dominated point
    assert at[0.96] == pytest.approx(-0.4)
    assert at[0.97] is None and at[0.7] is None  # outside the colourfulness swept


def test_frontier_averages_psnr_and_ratios_colourfulness_of_means():
    sweep = pd.DataFrame({"photo": ["a", "b"], "source": ["x", "y"], "temperature": [0.3, 0.3],
                          "undo_rebalancing": [0.0, 0.0], "chroma_gain": [1.0, 1.0], "prior_correction": [0.0, 0.0],
                          "psnr": [20.0, 24.0], "gray_psnr": [21.0, 22.0],
                          "colorfulness": [10.0, 30.0], "cf_truth": [20.0, 20.0]})
    row = frontier(sweep).loc[(0.3, 0.0, 1.0, 0.0)]
    assert row.psnr_vs_gray == pytest.approx(0.5) and row.cf_ratio == pytest.approx(1.0)


def test_held_out_photos_are_the_trainers_split(sources):
    held = held_out_photos(sources, fraction=0.34, seed=0)
    assert held == split_holdout(list_images(sources), 0.34, seed=0)[1] and len(held) == 1
    (name, path), = named_held_out(sources, fraction=0.34, seed=0)
    assert path == held[0] and name == str(path.relative_to(sources))



def test_balanced_frontier_weighs_every_source_the_same():
    decoding = {"temperature": 0.4, "undo_rebalancing": 0.0, "chroma_gain": 1.0, "prior_correction": 0.0}
    rows = [{"photo": f"big/{i}", "source": "big", **decoding, "psnr": 22.0, "gray_psnr": 21.0,
             "colorfulness": 30.0, "cf_truth": 30.0} for i in range(9)]
    rows.append({"photo": "small/0", "source": "small", **decoding, "psnr": 20.0, "gray_psnr": 21.0,
                 "colorfulness": 10.0, "cf_truth": 20.0})
    sweep = pd.DataFrame(rows)
    pooled, balanced = frontier(sweep).iloc[0], frontier(sweep, balanced=True).iloc[0]
    assert pooled.psnr_vs_gray == pytest.approx(0.8)  # nine photos at +1, one at -1
    assert balanced.psnr_vs_gray == pytest.approx(0.0)  # one source at +1, one at -1
    assert balanced.cf_ratio == pytest.approx((1.0 + 0.5) / 2)
    assert balanced.photos == 10


def test_semantic_holdout_is_one_in_eight_imagenet_samples_and_nothing_else():
    from colorizer.data import is_semantic_holdout

    chosen = [name for name in (f"n{i:08d}_x.jpg" for i in range(800))
              if is_semantic_holdout(f"train/imagenet_sample/{name}")]
    assert 70 <= len(chosen) <= 130  # one in eight, by a hash of the name
    assert not any(is_semantic_holdout(f"train/osie/{name}") for name in chosen)
