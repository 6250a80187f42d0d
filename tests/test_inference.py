"""Inference: every PIL mode, EXIF rotation, alpha, full-resolution output, bad inputs, a 40-megapixel photo."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer import Colorizer, ImageTooLargeError, InvalidImageError, fused_merge
from colorizer.color import rgb_to_lab
from colorizer.inference import merge_full_resolution, working_shape


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return Colorizer.from_file(tiny_weights, device="cpu")


def lightness(image):
    rgb = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).double() / 255
    return rgb_to_lab(rgb)[0].numpy()


def as_mode(image, mode):
    if mode == "I;16":
        return Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    if mode == "PA":
        return image.convert("RGBA").convert("PA") if hasattr(Image, "PA") else image.convert("P")
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_gives_full_size_color(colorizer, gradient_image, mode):
    image = as_mode(gradient_image, mode)
    out = colorizer.colorize(image)
    assert out.size == image.size
    assert out.mode == ("RGBA" if mode in ("LA", "RGBA") else "RGB")


def test_lightness_is_kept_from_the_input(colorizer, gradient_image):
    gray = gradient_image.convert("L")
    out = colorizer.colorize(gray)
    # the output's L* is the input's L* up to 8-bit rounding and gamut clipping of the chroma
    difference = np.abs(lightness(out) - lightness(gray))
    assert np.median(difference) < 1.0


def test_color_input_is_colorized_from_its_lightness(colorizer, gradient_image):
    from colorizer.imageio import split_photo

    matched_gray = Image.fromarray(np.round(split_photo(gradient_image).gray * 255).astype(np.uint8))
    out_color = np.asarray(colorizer.colorize(gradient_image)).astype(int)
    out_gray = np.asarray(colorizer.colorize(matched_gray)).astype(int)
    # same L* -> the same network input; 8-bit gray rounding moves results by at most a few levels
    assert np.abs(out_color - out_gray).mean() < 3


def test_alpha_is_preserved(colorizer, gradient_image):
    rgba = gradient_image.convert("RGBA")
    alpha = np.tile(np.arange(rgba.width, dtype=np.uint8) * 4, (rgba.height, 1))
    rgba.putalpha(Image.fromarray(alpha))
    out = colorizer.colorize(rgba)
    np.testing.assert_array_equal(np.asarray(out.getchannel("A")), alpha)


def test_a_file_of_several_pages_is_colorized_from_its_first_and_says_so(colorizer, gradient_image, tmp_path):
    from colorizer import MultiFrameWarning
    from colorizer.imageio import load_photo

    first = gradient_image.convert("L")
    pages = [first, Image.new("L", first.size, 30), Image.new("L", first.size, 220)]
    album = tmp_path / "album.tif"
    pages[0].save(album, save_all=True, append_images=pages[1:])
    with pytest.warns(MultiFrameWarning, match="3 frames"):
        photo = load_photo(album)
    assert photo.frames == 3
    np.testing.assert_array_equal(photo.levels, np.asarray(first))  # the first page, not another
    with pytest.warns(MultiFrameWarning):
        out = colorizer.colorize(album)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(colorizer.colorize(first)))
    frames = [gradient_image.convert("P"), gradient_image.rotate(180).convert("P")]  # GIF merges equal frames
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], transparency=0)
    with pytest.warns(MultiFrameWarning, match="2 frames"):
        assert load_photo(tmp_path / "moving.gif").frames == 2  # a palette GIF with transparency
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", MultiFrameWarning)
        assert load_photo(first).frames == 1  # one frame: no warning


def test_exif_rotation_gives_an_upright_output(colorizer, gradient_image):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = io.BytesIO()
    gradient_image.save(buffer, "JPEG", exif=exif.tobytes())
    out = colorizer.colorize(buffer.getvalue())
    assert out.size == (gradient_image.height, gradient_image.width)


def test_full_resolution_output_keeps_detail(colorizer):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (301, 413), dtype=np.uint8)  # detail far finer than the 64 px working size
    out = colorizer.colorize(Image.fromarray(noise), size=64)
    assert out.size == (413, 301)
    correlation = np.corrcoef(lightness(out).ravel(), lightness(Image.fromarray(noise)).ravel())[0, 1]
    assert correlation > 0.99


@pytest.mark.parametrize("payload, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
])
def test_bad_bytes_raise_invalid_image(colorizer, payload, message):
    with pytest.raises(InvalidImageError, match=message):
        colorizer.colorize(payload)


def test_truncated_file_raises_invalid_image(colorizer, tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:40_000])
    with pytest.raises(InvalidImageError, match="cut.png"):
        colorizer.colorize(path)


def test_decompression_bomb_is_refused_before_decoding(colorizer, tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(path)  # 400 MP of zeros compresses to a tiny file
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageTooLargeError, match="megapixels|too large"):
        colorizer.colorize(path)


def test_small_pixel_limit_is_enforced(tiny_weights, gradient_image):
    strict = Colorizer.from_file(tiny_weights, device="cpu", max_pixels=1000)
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        strict.colorize(gradient_image)


def test_missing_file_and_folder(colorizer, tmp_path):
    with pytest.raises(FileNotFoundError):
        colorizer.colorize(tmp_path / "nope.jpg")
    with pytest.raises(InvalidImageError, match="folder"):
        colorizer.colorize(tmp_path)


def test_batch_and_saturation(colorizer, gradient_image):
    plain, = colorizer.colorize_batch([gradient_image.convert("L")])
    gray_out = colorizer.colorize(gradient_image.convert("L"), saturation=0.0)
    rgb = np.asarray(gray_out).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 1  # no chroma left
    assert plain.size == gradient_image.size


def test_default_and_named_shipped_models(weights_dir):
    default = Colorizer(weights_dir=weights_dir, device="cpu")
    assert default.name == "balanced"
    assert Colorizer("vivid", weights_dir=weights_dir, device="cpu").name == "vivid"
    with pytest.raises(KeyError, match="shipped models: balanced, vivid"):
        Colorizer("nonexistent", weights_dir=weights_dir)


def test_registry_architecture_without_weights_warns(caplog):
    c = Colorizer("resnet_generator", device="cpu", weights_dir="/nonexistent")
    assert "random weights" in caplog.text
    assert c.colorize(Image.new("L", (40, 30), 100)).size == (40, 30)


def test_unavailable_device_is_a_clear_error(tiny_weights):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Colorizer.from_file(tiny_weights, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_shipped_models_on_cuda_match_the_cpu(gradient_image):
    """fp16 autocast on the GPU draws the CPU's picture to within rounding; a model whose activations overflow fp16
    (UCSD's VGG-16 gave NaN everywhere on an H200) falls back to fp32 instead of failing."""
    from colorizer.weights import shipped_weights

    photo = gradient_image.convert("L").resize((160, 120))
    names = sorted(shipped_weights())
    assert names, "no shipped weights to compare"
    for name in names:
        cpu = np.asarray(Colorizer(name, device="cpu").colorize(photo), dtype=np.int16)
        gpu = np.asarray(Colorizer(name, device="cuda").colorize(photo), dtype=np.int16)
        assert np.abs(cpu - gpu).mean() < 0.5, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("color_space", ["lab", "luv"])
def test_merge_on_cuda_matches_the_cpu_merge(color_space):
    rng = np.random.default_rng(5)
    levels = rng.integers(0, 256, (403, 517), dtype=np.uint8)
    chroma = torch.from_numpy(rng.normal(0, 0.5, (2, 13, 21)).astype(np.float32))
    cpu = merge_full_resolution(levels, chroma, (52, 81), 4, color_space).astype(int)
    gpu = merge_full_resolution(levels, chroma, (52, 81), 4, color_space, rows=100, device="cuda").astype(int)
    difference = np.abs(cpu - gpu)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-2


def test_working_shape_caps_panoramas():
    assert working_shape(3000, 4000, 256) == (256, 341)
    assert working_shape(100, 10000, 256) == (10, 1024)


def test_merge_matches_bilinear_upsampling():
    # for a stride-1 head whose grid divides the output evenly, the merge is plain bilinear interpolation
    chroma = torch.rand(2, 8, 10) * 0.4 - 0.2
    gray = np.full((32, 40), 0.5, np.float32)
    merged = merge_full_resolution(gray, chroma, (8, 10), 1, "lab")
    expected = torch.nn.functional.interpolate(chroma[None], size=(32, 40), mode="bilinear", align_corners=False)[0]
    from colorizer.color import denormalize_chroma, lab_to_rgb, gray_to_lightness
    lab = torch.cat((gray_to_lightness(torch.from_numpy(gray))[None], denormalize_chroma(expected, "lab")))
    reference = (lab_to_rgb(lab) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(merged.astype(int) - reference.astype(int)).max() <= 1


@pytest.mark.skipif(not fused_merge.available(), reason="numba is not installed")
def test_fused_merge_equals_the_torch_merge(monkeypatch):
    """The compiled merge against the torch one on an uneven grid, saturated chroma (clipping) and every gray level."""
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (203, 317), dtype=np.uint8)
    levels[0] = np.arange(317) % 256
    chroma = torch.from_numpy(rng.normal(0, 0.5, (2, 13, 21)).astype(np.float32))  # Lab ab up to ~+-200: clipped
    fused = merge_full_resolution(levels, chroma, (52, 81), 4, "lab")
    fused_from_float = merge_full_resolution(levels.astype(np.float32) / 255, chroma, (52, 81), 4, "lab")
    monkeypatch.setattr(fused_merge, "available", lambda: False)
    reference = merge_full_resolution(levels.astype(np.float32) / 255, chroma, (52, 81), 4, "lab")
    from_uint8 = merge_full_resolution(levels, chroma, (52, 81), 4, "lab")
    assert np.array_equal(fused, fused_from_float) and np.array_equal(reference, from_uint8)
    difference = np.abs(fused.astype(int) - reference.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3  # only rounding order differs
    assert (reference == 0).any() and (reference == 255).any()  # the clipping was exercised


def test_merges_from_several_threads_at_once_give_the_same_pictures():
    """The app colorizes from several threads; the compiled merge's thread pool must not be entered twice."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    levels = rng.integers(0, 256, (301, 257), dtype=np.uint8)
    chroma = torch.from_numpy(rng.normal(0, 0.3, (2, 19, 17)).astype(np.float32))
    expected = merge_full_resolution(levels, chroma, (76, 65), 4, "lab")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: merge_full_resolution(levels, chroma, (76, 65), 4, "lab"), range(12)))
    assert all(np.array_equal(result, expected) for result in results)


@pytest.mark.slow
def test_forty_megapixel_photo(colorizer):
    image = Image.new("L", (7300, 5480), 120)  # 40 MP
    out = colorizer.colorize(image)
    assert out.size == image.size


def test_preset_reuses_weights_with_its_own_temperature(tiny_weights, tmp_path, gradient_image):
    import json
    import shutil

    from colorizer.weights import read_info, shipped_weights

    shutil.copy(tiny_weights, tmp_path / "base.safetensors")
    (tmp_path / "warm.preset.json").write_text(json.dumps({"weights": "base.safetensors", "temperature": 0.9,
                                                           "description": "warmer"}))
    assert set(shipped_weights(tmp_path)) == {"base", "warm"}
    assert read_info(tmp_path / "warm.preset.json").config["temperature"] == 0.9
    warm = Colorizer("warm", weights_dir=tmp_path, device="cpu")
    base = Colorizer("base", weights_dir=tmp_path, device="cpu")
    assert warm.model.config.temperature == 0.9 and warm.describe() == "warmer"
    assert base.model.config.temperature != 0.9
    assert warm.colorize(gradient_image).size == gradient_image.size


def test_preset_named_like_its_weights_sets_their_shipped_decoding(tiny_weights, tmp_path, gradient_image):
    import json
    import shutil

    from colorizer.weights import shipped_weights

    shutil.copy(tiny_weights, tmp_path / "base.safetensors")
    plain = Colorizer("base", weights_dir=tmp_path, device="cpu").colorize(gradient_image)
    (tmp_path / "base.preset.json").write_text(json.dumps({"weights": "base.safetensors", "temperature": 0.5,
                                                           "undo_rebalancing": 0.3, "chroma_gain": 1.5}))
    assert shipped_weights(tmp_path) == {"base": tmp_path / "base.preset.json"}
    tuned = Colorizer("base", weights_dir=tmp_path, device="cpu")
    config = tuned.model.config
    assert (config.temperature, config.undo_rebalancing, config.chroma_gain) == (0.5, 0.3, 1.5)
    assert not np.array_equal(np.asarray(tuned.colorize(gradient_image)), np.asarray(plain))
    by_path = Colorizer(tmp_path / "base.preset.json", device="cpu")  # the app opens shipped models by path
    assert by_path.name == "base" and by_path.model.config.chroma_gain == 1.5


def test_weights_fingerprint_names_the_exact_files(tiny_weights, tmp_path):
    """A study records it per condition: equal bytes give equal hashes; a preset's covers its weights file too."""
    import hashlib
    import json
    import shutil

    from colorizer.weights import fingerprint

    shutil.copy(tiny_weights, tmp_path / "base.safetensors")
    plain = hashlib.sha256(tiny_weights.read_bytes()).hexdigest()
    assert fingerprint(tmp_path / "base.safetensors") == plain
    preset = tmp_path / "warm.preset.json"
    preset.write_text(json.dumps({"weights": "base.safetensors", "temperature": 0.9}))
    warm = Colorizer(preset, device="cpu")
    assert warm.weights_path == preset and warm.weights_sha256 == fingerprint(preset) != plain
    assert Colorizer("base", weights_dir=tmp_path, device="cpu").weights_sha256 == plain
    preset.write_text(json.dumps({"weights": "base.safetensors", "temperature": 0.8}))
    assert fingerprint(preset) != warm.weights_sha256  # another decoding, another fingerprint
    before = fingerprint(preset)
    with open(tmp_path / "base.safetensors", "ab") as handle:  # the same preset over changed weights
        handle.write(b" ")
    assert fingerprint(preset) != before
    assert Colorizer("context_unet", device="cpu").weights_sha256 is None  # random weights: no file


def test_flip_average_is_mirror_symmetric():
    """With flip averaging the prediction for the mirrored photo is the mirrored prediction; without it, not."""
    import torch

    from colorizer import models

    torch.manual_seed(0)
    for head in ("classify", "regress"):
        model = models.create("context_unet", width=8, head=head).train()  # batch statistics: a varied output
        lightness = torch.rand(1, 1, 64, 96) * 2 - 1
        with torch.no_grad():
            averaged = model.predict_chroma(lightness, flip_average=True)
            averaged_mirror = model.predict_chroma(lightness.flip(-1), flip_average=True)
            plain = model.predict_chroma(lightness)
            plain_mirror = model.predict_chroma(lightness.flip(-1))
        torch.testing.assert_close(averaged_mirror, averaged.flip(-1), rtol=1e-4, atol=1e-5)
        assert (plain_mirror - plain.flip(-1)).abs().max() > 1e-3


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_statistics_beyond_fp16_range_survive_saving(tmp_path, precision, gradient_image):
    """A conv followed by BatchNorm can grow until BN's running variance passes fp16's 65504 (1e21 seen in a
    Manipal run): saved as fp16 it became inf and every colour NaN."""
    from colorizer import models
    from colorizer.weights import WeightsInfo, load_weights, save_weights

    torch.manual_seed(0)
    model = models.create("context_unet", width=8)
    norm = next(module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d))
    norm.running_var.fill_(7.9e21)
    norm.running_mean.fill_(2.3e10)
    path = save_weights(model, tmp_path / "big.safetensors", WeightsInfo("context_unet", model.config.to_dict(),
                                                                          working_size=64), precision=precision)
    loaded, _ = load_weights(path)
    loaded_norm = next(module for module in loaded.modules() if isinstance(module, torch.nn.BatchNorm2d))
    assert torch.allclose(loaded_norm.running_var, norm.running_var, rtol=1e-6)
    out = np.asarray(Colorizer.from_file(path, device="cpu").colorize(gradient_image))
    assert out.shape[:2] == gradient_image.size[::-1]


def test_non_finite_colours_are_a_clear_error_not_an_index_error():
    from colorizer.inference import merge_full_resolution

    chroma = torch.zeros(2, 4, 4)
    chroma[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite colours"):
        merge_full_resolution(np.full((16, 16), 0.5, np.float32), chroma, (16, 16), 4, "lab")


@pytest.mark.parametrize("architecture", ["context_unet", "resnet18_unet", "vgg16_regression"])
def test_cpu_channels_last_colours_match_the_plain_layout(architecture, gradient_image):
    torch.manual_seed(0)
    c = Colorizer(architecture, device="cpu", weights_dir="/nonexistent", size=64)
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in c.model.parameters())  # NHWC weights, the layout CPU convolutions run fastest in
    fast = np.asarray(c.colorize(gradient_image), dtype=int)
    c.model = c.model.to(memory_format=torch.contiguous_format)
    plain_input = c.network_input
    c.network_input = lambda gray, size=None: (lambda out: (out[0].contiguous(), out[1]))(plain_input(gray, size))
    plain = np.asarray(c.colorize(gradient_image), dtype=int)
    assert np.abs(fast - plain).max() <= 1  # float summation order only
