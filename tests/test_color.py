"""Colour conversions against scikit-image, round trips, edge cases, gradients."""

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from colorizer import color

EDGE_COLORS = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
                        [0.5, 0.5, 0.5], [0.01, 0.0, 0.0]], dtype=np.float64)


# skimage uses the rounded CIE constants 0.008856 and 7.787; colorizer.color the exact 216/24389 and 24389/27,
# so values agree to ~2e-4 L* units (far below 1/100 of a just-noticeable difference).
TOLERANCE = 1e-3


def random_rgb(n=200, seed=0):
    return np.random.default_rng(seed).random((n, 3))


def as_image(rgb_rows):  # (N, 3) -> (1, 3, N, 1) tensor
    return torch.from_numpy(rgb_rows.T[None, :, :, None].copy())


def from_image(tensor):  # (1, 3, N, 1) -> (N, 3)
    return tensor[0, :, :, 0].T.numpy()


@pytest.mark.parametrize("rows", [random_rgb(), EDGE_COLORS], ids=["random", "edges"])
def test_lab_matches_skimage(rows):
    ours = from_image(color.rgb_to_lab(as_image(rows)))
    reference = skcolor.rgb2lab(rows[None])[0]
    np.testing.assert_allclose(ours, reference, atol=TOLERANCE)


@pytest.mark.parametrize("rows", [random_rgb(), EDGE_COLORS], ids=["random", "edges"])
def test_luv_matches_skimage(rows):
    ours = from_image(color.rgb_to_luv(as_image(rows)))
    reference = skcolor.rgb2luv(rows[None])[0]
    np.testing.assert_allclose(ours, reference, atol=TOLERANCE)


def test_lab_to_rgb_matches_skimage():
    lab = skcolor.rgb2lab(random_rgb(seed=1)[None])[0]
    ours = from_image(color.lab_to_rgb(as_image(lab)))
    np.testing.assert_allclose(ours, skcolor.lab2rgb(lab[None])[0], atol=1e-5)


@pytest.mark.parametrize("forward, backward", [(color.rgb_to_lab, color.lab_to_rgb), (color.rgb_to_luv, color.luv_to_rgb)])
def test_round_trip(forward, backward):
    rgb = as_image(np.vstack([random_rgb(seed=2), EDGE_COLORS]))
    np.testing.assert_allclose(backward(forward(rgb)).numpy(), rgb.numpy(), atol=1e-6)


def test_white_and_black_reference_values():
    lab = from_image(color.rgb_to_lab(as_image(np.array([[0.0, 0, 0], [1.0, 1, 1]]))))
    # white's a, b are ~0.005, not 0: the sRGB matrix's row sums differ from the D65 white in the 5th digit
    np.testing.assert_allclose(lab, [[0, 0, 0], [100, 0, 0]], atol=1e-2)


def test_batched_shapes_and_dtypes():
    rgb = torch.rand(2, 4, 3, 5, 7, dtype=torch.float32)
    lab = color.rgb_to_lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == torch.float32
    assert color.rgb_to_luv(rgb.double()).dtype == torch.float64


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        color.rgb_to_lab(torch.rand(4, 5, 6))
    with pytest.raises(TypeError, match="floating"):
        color.rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(KeyError, match="colour space"):
        color.normalize_chroma(torch.zeros(1, 2, 2, 2), "hsv")


def test_out_of_gamut_is_clipped_without_nans():
    lab = torch.tensor([[150.0, 200, -200], [-20, 300, 300], [50, -500, 500], [0, 0, 0]]).T[None, :, :, None]
    rgb = color.lab_to_rgb(lab)
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    luv = torch.tensor([[0.0, 50, 50], [100, 500, -500], [50, -400, 300]]).T[None, :, :, None]
    rgb = color.luv_to_rgb(luv)
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1


@pytest.mark.parametrize("function", [color.rgb_to_lab, color.rgb_to_luv, color.lab_to_rgb])
def test_gradcheck_float64(function):
    torch.manual_seed(0)
    if function is color.lab_to_rgb:
        x = torch.stack([torch.rand(3, 4) * 60 + 20, torch.randn(3, 4) * 10, torch.randn(3, 4) * 10])[None]
        x = x.double().requires_grad_()
        function = lambda t: color.lab_to_rgb(t, clip=False)  # noqa: E731
    else:
        x = (torch.rand(1, 3, 3, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(function, (x,), eps=1e-6, atol=1e-4)


def test_normalisation_round_trip_and_range():
    for space in color.COLOR_SPACES:
        rgb = torch.rand(1, 3, 16, 16, dtype=torch.float64)
        chroma = color.rgb_to_space(rgb, space)[:, 1:]
        normalised = color.normalize_chroma(chroma, space)
        assert normalised.abs().max() <= 1.05
        torch.testing.assert_close(color.denormalize_chroma(normalised, space), chroma)
    lightness = torch.tensor([0.0, 50.0, 100.0])
    torch.testing.assert_close(color.normalize_l(lightness), torch.tensor([-1.0, 0.0, 1.0]))


def test_gray_to_lightness_matches_lab_of_gray():
    gray = torch.linspace(0, 1, 11, dtype=torch.float64)
    rgb = gray.view(1, 1, 11, 1).expand(1, 3, 11, 1)
    torch.testing.assert_close(color.gray_to_lightness(gray), color.rgb_to_lab(rgb)[0, 0, :, 0])


def test_lookup_table_merge_matches_lab_to_rgb_within_one_level():
    generator = torch.Generator().manual_seed(0)
    gray = torch.rand(64, 80, generator=generator)
    ab = (torch.rand(2, 64, 80, generator=generator) - 0.5) * 200  # well beyond the sRGB gamut: clipping counts too
    merged = color.gray_ab_to_srgb8(gray, ab)
    assert merged.shape == (64, 80, 3) and merged.dtype == torch.uint8
    ours = merged.to(torch.int32)
    lab = torch.cat((color.gray_to_lightness(gray.double())[None], ab.double()))
    reference = (color.lab_to_rgb(lab) * 255).round().to(torch.int32).permute(1, 2, 0)
    assert (ours - reference).abs().max() <= 1


def test_luv_to_rgb_is_continuous_for_dark_pixels_with_unreal_chroma():
    """A model may predict u, v too large for a near-black pixel's L; where v' crosses zero, x = 9u'y / 4v' had a
    pole, so the pixel flipped between black and full red (CPU against GPU: 255 levels apart)."""
    from colorizer.color import luv_to_rgb

    lightness = 1.0
    v_at_pole = -13 * lightness * 0.4683  # v' = v / 13L + v'_white = 0 (v'_white of D65 is 0.4683)
    v = torch.linspace(v_at_pole - 0.05, v_at_pole + 0.05, 201)
    luv = torch.stack((torch.full_like(v, lightness), torch.full_like(v, 20.0), v))[:, None, :]  # (3, 1, 201)
    rgb = luv_to_rgb(luv)[:, 0]  # (3, 201)
    assert torch.isfinite(rgb).all()
    assert (rgb[:, 1:] - rgb[:, :-1]).abs().max() < 0.02
