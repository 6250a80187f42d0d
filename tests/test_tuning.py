"""Choosing the decoding temperature: the sweep decodes as colorizing does, and the rule picks what it says."""

import pandas as pd
import pytest
from PIL import Image

from colorizer import Colorizer
from colorizer.data import held_out_photos, named_held_out, named_photos, split_holdout, list_images
from colorizer.evaluate import evaluate_folder
from colorizer.tuning import choose_temperature, frontier, temperature_sweep


@pytest.fixture
def sources(tmp_path):
    from skimage import data

    for source, names in (("scenes", ("astronaut", "coffee")), ("animals", ("chelsea",))):
        (tmp_path / "val" / source).mkdir(parents=True)
        for name in names:
            Image.fromarray(getattr(data, name)()).resize((80, 72)).save(tmp_path / "val" / source / f"{name}.png")
    return tmp_path / "val"


def test_sweep_matches_evaluating_at_each_temperature(tiny_weights, sources):
    colorizer = Colorizer.from_file(tiny_weights, device="cpu")
    photos = named_photos(sources)
    sweep = temperature_sweep(colorizer, photos, (0.3, 1.0), progress=False)
    assert sorted(sweep["source"].unique()) == ["animals", "scenes"] and len(sweep) == 6
    for temperature in (0.3, 1.0):
        colorizer.temperature = temperature
        evaluation, _ = evaluate_folder(colorizer, photos, progress=False)
        swept = sweep[sweep.temperature == temperature].set_index("photo")
        measured = evaluation.per_photo.set_index("photo")
        pd.testing.assert_series_equal(swept["psnr"], measured["psnr"], check_names=False)
        pd.testing.assert_series_equal(swept["colorfulness"], measured["colorfulness"], check_names=False)


def test_rule_takes_the_best_psnr_among_colourful_enough_temperatures():
    table = pd.DataFrame({"psnr_vs_gray": [-0.4, -0.1, 0.2, 0.3], "cf_ratio": [0.96, 0.91, 0.85, 0.78]},
                         index=pd.Index([0.2, 0.3, 0.5, 0.7], name="temperature"))
    choice = choose_temperature(table, min_cf=0.9)
    assert (choice.temperature, choice.meets_rule) == (0.3, True)
    assert choose_temperature(table, min_cf=0.8).temperature == 0.5
    fallback = choose_temperature(table, min_cf=0.99)
    assert (fallback.temperature, fallback.meets_rule) == (0.2, False)


def test_frontier_averages_psnr_and_ratios_colourfulness_of_means():
    sweep = pd.DataFrame({"photo": ["a", "b"], "source": ["x", "y"], "temperature": [0.3, 0.3],
                          "psnr": [20.0, 24.0], "gray_psnr": [21.0, 22.0],
                          "colorfulness": [10.0, 30.0], "cf_truth": [20.0, 20.0]})
    row = frontier(sweep).loc[0.3]
    assert row.psnr_vs_gray == pytest.approx(0.5) and row.cf_ratio == pytest.approx(1.0)


def test_held_out_photos_are_the_trainers_split(sources):
    held = held_out_photos(sources, fraction=0.34, seed=0)
    assert held == split_holdout(list_images(sources), 0.34, seed=0)[1] and len(held) == 1
    (name, path), = named_held_out(sources, fraction=0.34, seed=0)
    assert path == held[0] and name == str(path.relative_to(sources))
