"""Training: a few steps lower the loss on a tiny synthetic set; resume continues exactly; every loss runs."""

import numpy as np
import pytest
import torch

from colorizer.data import PhotoCache, is_near_grayscale
from colorizer.train import TrainConfig, Trainer, cosine_factor


def synthetic_cache(count=6, side=40, seed=0):
    """Photos whose colour follows their brightness pattern, so there is something to learn."""
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(count):
        y, x = np.mgrid[0:side, 0:side + 8]
        stripes = ((x // 6) % 2).astype(bool)
        rgb = np.zeros((side, side + 8, 3), np.uint8)
        rgb[stripes] = (200, 60, 40)  # bright red stripes
        rgb[~stripes] = (20, 40, 120)  # dark blue stripes
        rgb = np.clip(rgb.astype(int) + rng.integers(-10, 10, rgb.shape), 0, 255).astype(np.uint8)
        photos.append(rgb)
    return PhotoCache(photos, [f"synthetic{i}" for i in range(count)], side)


def make_trainer(tmp_path, loss="mse", model="context_unet", **overrides):
    model_config = {"width": 8} if model == "context_unet" else {}
    config = TrainConfig(model=model, model_config=model_config, out=str(tmp_path), loss=loss, size=32,
                         max_crop=40, batch=4, steps_per_epoch=3, lr=3e-3, progress=False, **overrides)
    return Trainer(config, synthetic_cache(), synthetic_cache(2, seed=1))


def test_training_steps_lower_the_loss(tmp_path):
    trainer = make_trainer(tmp_path)
    torch.manual_seed(0)
    batch = trainer.sampler.sample(4)
    first = trainer.train_step(batch)
    for _ in range(15):
        last = trainer.train_step(batch)
    assert last < 0.7 * first


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    straight = make_trainer(tmp_path / "straight", loss="classify", epochs=3)
    straight.fit()
    first = make_trainer(tmp_path / "split", loss="classify", epochs=2)
    first.fit()
    resumed = make_trainer(tmp_path / "split", loss="classify", epochs=3)
    assert resumed.resume()
    resumed.fit()
    assert [round(r["train_loss"], 6) for r in resumed.history] == [round(r["train_loss"], 6) for r in straight.history]
    assert resumed.history[-1]["val_loss"] == pytest.approx(straight.history[-1]["val_loss"], rel=1e-6)
    for name, tensor in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor)


def test_cosine_schedule_decays_to_zero_at_the_budget_and_resumes_exactly(tmp_path):
    budget = 3 * 3 * 4  # three epochs of three steps of four crops
    straight = make_trainer(tmp_path / "straight", schedule="cosine", budget_images=budget)
    straight.fit()
    rates = [row["lr"] for row in straight.history]
    assert len(rates) == 3 and rates[0] > rates[1] > rates[2]
    assert rates[2] == pytest.approx(3e-3 * cosine_factor(budget - 4, budget))  # the last step's rate, near zero
    assert rates[2] < 0.05 * 3e-3
    first = make_trainer(tmp_path / "split", schedule="cosine", budget_images=budget, epochs=1)
    first.fit()
    resumed = make_trainer(tmp_path / "split", schedule="cosine", budget_images=budget)
    assert resumed.resume()
    resumed.fit()
    assert [row["lr"] for row in resumed.history] == pytest.approx(rates)
    assert resumed.history[-1]["train_loss"] == pytest.approx(straight.history[-1]["train_loss"], rel=1e-6)


def test_cosine_schedule_needs_a_budget():
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(schedule="cosine")


@pytest.mark.parametrize("loss", ["huber", "blur", "classify", "gan"])
def test_every_loss_trains_an_epoch(tmp_path, loss):
    trainer = make_trainer(tmp_path, loss=loss, epochs=1, gan_pretrain_epochs=0)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "last.pt").exists()
    assert (tmp_path / "last.safetensors").exists()
    assert (tmp_path / "log.csv").read_text().startswith("epoch,train_loss")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_luv_model_trains(tmp_path):
    config = TrainConfig(model="vgg16_regression", model_config={"pretrained": False}, out=str(tmp_path), loss="huber",
                         size=32, max_crop=32, batch=2, steps_per_epoch=1, epochs=1, progress=False)
    trainer = Trainer(config, synthetic_cache(), synthetic_cache(2, seed=1))
    assert trainer.space == "luv"
    assert np.isfinite(trainer.fit()[0]["val_loss"])


def test_exported_weights_rebuild_the_model(tmp_path):
    from colorizer.weights import load_weights

    trainer = make_trainer(tmp_path, loss="classify", epochs=1)
    trainer.fit()
    model, info = load_weights(tmp_path / "best.safetensors")
    assert info.architecture == "context_unet" and info.training["loss"] == "classify"
    lightness = torch.rand(1, 1, 32, 32) * 2 - 1
    trainer.model.eval()
    torch.testing.assert_close(model.predict_chroma(lightness), trainer.model.predict_chroma(lightness),
                               atol=2e-2, rtol=0)  # fp16 storage


def test_keep_intervals_exports_every_interval_that_last_held(tmp_path):
    from safetensors.torch import load_file

    kept = make_trainer(tmp_path / "kept", loss="gan", epochs=3, keep_intervals=True, gan_pretrain_epochs=1)
    kept.fit()
    assert sorted(p.name for p in (tmp_path / "kept").glob("interval-*")) == [
        "interval-001.safetensors", "interval-002.safetensors", "interval-003.safetensors"]
    last, third = load_file(tmp_path / "kept" / "last.safetensors"), load_file(tmp_path / "kept" / "interval-003.safetensors")
    assert last.keys() == third.keys() and all(torch.equal(last[k], third[k]) for k in last)
    first = load_file(tmp_path / "kept" / "interval-001.safetensors")
    assert any(not torch.equal(first[k], third[k]) for k in first)
    make_trainer(tmp_path / "plain", epochs=1).fit()
    assert not list((tmp_path / "plain").glob("interval-*"))


def test_init_fine_tunes_from_weights_with_fresh_rebalancing(tmp_path):
    from colorizer.weights import load_weights

    source = make_trainer(tmp_path / "source", loss="classify", epochs=1)
    source.fit()
    weights = tmp_path / "source" / "best.safetensors"
    config = TrainConfig(model="context_unet", init=str(weights), out=str(tmp_path / "tuned"), loss="classify",
                         size=32, max_crop=40, batch=4, steps_per_epoch=1, epochs=1, rebalance_mix=0.1,
                         progress=False)
    tuned = Trainer(config, synthetic_cache(), synthetic_cache(2, seed=1))
    stored, _ = load_weights(weights)
    stored_state = stored.state_dict()
    for name, tensor in tuned.model.state_dict().items():
        if not name.endswith("class_weights"):
            torch.testing.assert_close(tensor, stored_state[name])
    # a smaller mix gives rare bins more weight: the spread of the rebalancing weights grows
    assert tuned.model.bins.class_weights.std() > source.model.bins.class_weights.std()
    assert np.isfinite(tuned.fit()[0]["train_loss"])
    from colorizer.weights import read_info

    record = read_info(tmp_path / "tuned" / "best.safetensors").training
    assert record["init"] == "source/best.safetensors" and record["rebalance_mix"] == 0.1
    assert record["init_training"]["epochs"] == 1
    with pytest.raises(ValueError, match="not a 'unet'"):
        Trainer(TrainConfig(model="unet", init=str(weights), out=str(tmp_path / "wrong"), progress=False),
                synthetic_cache(), synthetic_cache(2, seed=1))


def test_random_init_encoder_learns_at_the_full_rate(tmp_path, monkeypatch):
    from colorizer import models
    from colorizer.train import _parameter_groups

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no ImageNet file anywhere
    monkeypatch.delenv("COLORIZER_PRETRAINED_DIR", raising=False)
    config = TrainConfig(lr=1e-3, encoder_lr=3e-6)
    random_init = models.create("resnet18_unet")
    assert not random_init.encoder.imagenet_loaded
    assert [group["lr"] for group in _parameter_groups(random_init, config)] == [1e-3]

    import torchvision
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18-f37072fd.pth")
    monkeypatch.setenv("COLORIZER_PRETRAINED_DIR", str(tmp_path))
    loaded = models.create("resnet18_unet")
    groups = _parameter_groups(loaded, config)
    assert loaded.encoder.imagenet_loaded and [group["lr"] for group in groups] == [3e-6, 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(loaded.parameters()))


def test_near_grayscale_photos_are_detected():
    gray = np.repeat(np.random.default_rng(0).integers(0, 255, (20, 20, 1)), 3, axis=2).astype(np.uint8)
    assert is_near_grayscale(gray)
    assert not is_near_grayscale(synthetic_cache(1).photos[0])


def test_another_training_seed_holds_out_the_photos_the_tools_validate_on(tmp_path):
    from PIL import Image

    from colorizer.data import held_out_photos

    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"photo{i:02d}.png")
    config = TrainConfig(model_config={"width": 8}, data=str(tmp_path), out=str(tmp_path / "run"), size=32,
                         val_fraction=0.25, seed=3, progress=False)
    trainer = Trainer(config)
    held = [str(path) for path in held_out_photos(tmp_path, fraction=0.25)]
    assert sorted(trainer.val_cache.paths) == sorted(held)
    assert not set(trainer.train_cache.paths) & set(held)


def test_metadata_says_whether_imagenet_weights_loaded_and_which_rate_applied(tmp_path, monkeypatch):
    """A recipe may ask for an ImageNet encoder at 3e-6; without the file the record must not claim either."""
    from colorizer.weights import read_info

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no ImageNet file anywhere
    monkeypatch.delenv("COLORIZER_PRETRAINED_DIR", raising=False)
    trainer = make_trainer(tmp_path / "random", model="resnet18_unet", epochs=1, encoder_lr=3e-6)
    trainer.fit()
    record = read_info(tmp_path / "random" / "last.safetensors").training
    assert record["imagenet_encoder_loaded"] is False
    assert record["optimizer"]["encoder_lr"] is None  # it trained at lr with the rest

    frozen = make_trainer(tmp_path / "frozen", model="lite_unet", epochs=1, freeze_encoder=True)
    assert frozen.effective_encoder_lr() == 0.0  # the installed EfficientNet-Lite0 weights loaded, frozen
    tuned = make_trainer(tmp_path / "tuned", model="lite_unet", epochs=1, encoder_lr=1e-4)
    assert tuned.effective_encoder_lr() == 1e-4


def test_a_soup_is_the_mean_of_its_checkpoints_with_batchnorm_re_estimated(tmp_path):
    from colorizer.soup import export_soup
    from colorizer.weights import load_weights

    trainer = make_trainer(tmp_path / "run", loss="classify", epochs=1)
    trainer.fit()
    (tmp_path / "run" / "last.safetensors").rename(tmp_path / "epoch1.safetensors")
    trainer.config.epochs = 2
    trainer.fit()
    paths = [tmp_path / "epoch1.safetensors", tmp_path / "run" / "last.safetensors"]
    records = export_soup(make_trainer(tmp_path / "soup", loss="classify"), paths, tmp_path / "soup.safetensors")
    assert [r["epochs"] for r in records] == [1, 2]
    (first, _), (second, _) = (load_weights(path) for path in paths)
    soup, info = load_weights(tmp_path / "soup.safetensors")
    assert info.training["soup_of"] == records
    weights = [name for name, _ in soup.named_parameters()]
    for name in weights:
        mean = (first.state_dict()[name].float() + second.state_dict()[name].float()) / 2
        torch.testing.assert_close(soup.state_dict()[name].float(), mean, atol=2e-3, rtol=1e-3)  # fp16 storage
    norms = [m for m in soup.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not all(torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in norms)
    lightness = torch.rand(1, 1, 32, 32) * 2 - 1
    assert torch.isfinite(soup.eval().predict_chroma(lightness)).all()
