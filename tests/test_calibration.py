"""The prior correction: the fit matches marginals, decoding adds it, presets carry it, specs and the CLI set it."""

import json

import pytest
import torch
from PIL import Image

from colorizer import Colorizer
from colorizer.bins import AbBins
from colorizer.calibration import match_marginal
from colorizer.cli import main
from colorizer.inference import parse_decoding


def test_match_marginal_recovers_a_known_shift():
    torch.manual_seed(0)
    logits = 2 * torch.randn(20000, 6)
    true_shift = torch.tensor([1.5, -1.0, 0.0, 0.5, -2.0, 1.0])
    targets = torch.softmax(logits + true_shift, dim=1)  # what the photos "really" have
    shift = match_marginal(logits, targets)
    assert torch.allclose(torch.softmax(logits + shift, 1).mean(0), targets.mean(0), atol=2e-4)
    assert torch.allclose(shift, true_shift - true_shift.mean(), atol=0.02)
    assert not torch.allclose(torch.softmax(logits, 1).mean(0), targets.mean(0), atol=2e-2)  # there was a bias
    with pytest.raises(ValueError, match="same shape"):
        match_marginal(logits, targets[:, :5])


def test_decode_adds_the_shift_before_annealing():
    bins = AbBins()
    torch.manual_seed(1)
    logits, shift = torch.randn(1, bins.count, 3, 4), torch.randn(bins.count)
    expected = 1.4 * bins.annealed_mean(logits + shift[:, None, None], 0.45)
    assert torch.allclose(bins.decode(logits, 0.45, gain=1.4, shift=shift), expected, atol=1e-6)
    assert not torch.allclose(bins.decode(logits, 0.45, gain=1.4), expected, atol=1e-3)


def test_parse_decoding_fills_neutral_values_and_rejects_bad_text():
    assert parse_decoding("0.45") == {"temperature": 0.45, "undo_rebalancing": 0.0, "chroma_gain": 1.0,
                                      "prior_correction": 0.0}
    assert parse_decoding("0.5:0.25:1.3:0.6") == {"temperature": 0.5, "undo_rebalancing": 0.25, "chroma_gain": 1.3,
                                                  "prior_correction": 0.6}
    for bad in ("0.5:x", "0.5:0:1:0.5:9", ""):
        with pytest.raises(ValueError, match="a decoding is T"):
            parse_decoding(bad)


def test_a_correction_needs_a_fitted_shift(tiny_weights):
    with pytest.raises(ValueError, match="no fitted prior shift"):
        Colorizer.from_spec(f"{tiny_weights}@0.4:0:1.5:0.5", device="cpu")


@pytest.fixture
def train_folder(tmp_path):
    from skimage import data

    for source, names in (("scenes", ("astronaut", "coffee", "rocket")), ("animals", ("chelsea", "cat"))):
        (tmp_path / "train" / source).mkdir(parents=True)
        for name in names:
            Image.fromarray(getattr(data, name)()).resize((96, 80)).save(tmp_path / "train" / source / f"{name}.png")
    return tmp_path / "train"


def test_calibrate_writes_a_preset_that_colorizes_with_the_fitted_shift(tiny_weights, train_folder, tmp_path,
                                                                         capsys):
    preset = tmp_path / "presets" / "tiny-fitted.preset.json"
    assert main(["calibrate", str(train_folder), "--weights", str(tiny_weights), "--photos", "4", "--pixels", "300",
                 "--decoding", "0.45:0:1.5:0.5", "--out", str(preset)]) == 0
    assert "fitted on 4 photos (1200 pixels)" in capsys.readouterr().out
    payload = json.loads(preset.read_text())
    fit = payload["prior_fit"]
    truth, before, after = (torch.tensor(fit[key]) for key in ("mean_ab_truth", "mean_ab_predicted",
                                                               "mean_ab_corrected"))
    assert (after - truth).abs().max() < 0.5 < (before - truth).abs().max()  # the random model is far off

    colorizer = Colorizer.from_file(preset, device="cpu")
    config = colorizer.model.config
    assert (config.temperature, config.chroma_gain, config.prior_correction) == (0.45, 1.5, 0.5)
    assert len(config.prior_shift) == colorizer.model.bins.count and colorizer.name == "tiny-fitted"
    shifted = colorizer.colorize(Image.open(train_folder / "scenes" / "coffee.png").convert("L"))
    config.prior_correction = 0.0
    plain = colorizer.colorize(Image.open(train_folder / "scenes" / "coffee.png").convert("L"))
    assert shifted.size == plain.size == (96, 80) and shifted.tobytes() != plain.tobytes()
    assert Colorizer.from_spec(f"{preset}@0.45:0:1.5:1", device="cpu").model.config.prior_correction == 1.0


def test_calibrate_refuses_a_bad_output_name_and_a_model_without_weights(train_folder, tmp_path, capsys):
    assert main(["calibrate", str(train_folder), "--model", "context_unet", "--out", str(tmp_path / "a.json")]) == 2
    assert "must end with .preset.json" in capsys.readouterr().err
    assert main(["calibrate", str(train_folder), "--model", "context_unet",
                 "--out", str(tmp_path / "a.preset.json")]) == 2
    assert "no trained weights" in capsys.readouterr().err
