"""Evaluation metrics: the source papers' errors measured their way, and the per-source table."""

import numpy as np
import pandas as pd
import pytest
from skimage import data
from skimage.color import rgb2lab, rgb2luv

from colorizer.color import CHROMA_NORMALISATION
from colorizer.evaluate import huber_uv, mse_ab, photo_metrics


@pytest.fixture
def pair():
    truth = data.astronaut()[::8, ::8]
    output = np.clip(truth.astype(int) + np.array([30, -10, -40]), 0, 255).astype(np.uint8)
    return output, truth


def test_mse_ab_is_keras_mse_over_the_ab_channels(pair):
    output, truth = pair
    expected = np.mean((rgb2lab(output)[..., 1:] - rgb2lab(truth)[..., 1:]) ** 2)
    assert mse_ab(output, truth) == pytest.approx(expected, rel=1e-4)
    assert mse_ab(truth, truth) == 0


def test_huber_uv_is_smooth_l1_over_uv_in_unit_range(pair):
    import torch

    output, truth = pair
    (u_center, v_center), (u_scale, v_scale) = CHROMA_NORMALISATION["luv"]

    def unit(rgb):
        uv = rgb2luv(rgb)[..., 1:]
        return (uv - [u_center, v_center]) / [u_scale, v_scale] / 2 + 0.5

    expected = torch.nn.functional.smooth_l1_loss(torch.tensor(unit(output)), torch.tensor(unit(truth))).item()
    assert huber_uv(output, truth) == pytest.approx(expected, rel=1e-3)
    assert 0 < huber_uv(output, truth) < 0.05  # errors of a few hundredths: the quadratic branch


def test_photo_metrics_of_a_perfect_output():
    truth = data.coffee()[::8, ::8]
    metrics = photo_metrics(truth, truth)
    assert metrics["mse"] == metrics["mse_ab"] == metrics["huber_uv"] == 0
    assert metrics["ssim"] == pytest.approx(1)


def test_per_source_groups_by_first_folder_and_names_top_level_photos():
    from colorizer.evaluate import per_source

    per_photo = pd.DataFrame({
        "photo": ["osie/a.jpg", "osie/sub/b.jpg", "c.png"],
        "psnr": [20.0, 24.0, 30.0], "gray_psnr": [21.0, 21.0, 29.0],
        "colorfulness": [10.0, 30.0, 5.0], "cf_truth": [20.0, 20.0, 10.0], "ciede2000": [4.0, 6.0, 1.0],
    })
    table = per_source(per_photo)
    assert list(table.index) == ["(top level)", "osie"]
    assert table.loc["osie", "photos"] == 2
    assert table.loc["osie", "psnr_vs_gray"] == pytest.approx(1.0)
    assert table.loc["osie", "cf_ratio"] == pytest.approx(1.0)
    assert table.loc["(top level)", "psnr_vs_gray"] == pytest.approx(1.0)
    assert table.loc["(top level)", "cf_ratio"] == pytest.approx(0.5)
