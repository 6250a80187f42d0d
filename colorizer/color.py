"""Colour science as pure, batched, differentiable torch functions.

Every conversion takes and returns tensors shaped ``(*, 3, H, W)`` (channel dimension third from the end),
works on any device and floating dtype, and creates its constants on the input's device and dtype.

Formulas: IEC 61966-2-1 (sRGB transfer function), the sRGB -> XYZ matrix for a D65 white point, and
CIE 15:2004 for CIELAB and CIELUV (the same constants scikit-image uses, so results agree with
``skimage.color.rgb2lab`` / ``rgb2luv`` with ``illuminant="D65", observer="2"``).

The normalisation every model shares follows the conversions: ``normalize_l``, ``normalize_chroma`` and
``denormalize_chroma``. Last, ``gray_ab_to_srgb8``: the full-resolution merge's Lab -> 8-bit sRGB step through
lookup tables (not differentiable; fast on 50-megapixel photos).
"""

from __future__ import annotations

import functools

import torch

# D65 reference white, 2-degree observer (CIE 15:2004), Y normalised to 1.
WHITE_D65 = (0.95047, 1.0, 1.08883)

# sRGB (linear) -> XYZ, D65 (IEC 61966-2-1). Same values as skimage.color.colorconv.xyz_from_rgb.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)

_EPSILON = 216.0 / 24389.0  # (6/29)^3: CIE's linear/cubic switch point in f(t)
_KAPPA = 24389.0 / 27.0  # (29/3)^3


def _check_image(tensor: torch.Tensor, name: str = "image") -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() < 3 or tensor.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W), got {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {tensor.dtype}")


def _matrix(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, device=like.device, dtype=like.dtype)


def _apply_matrix(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    # (3, 3) x (*, 3, H, W) -> (*, 3, H, W)
    return torch.einsum("ij,...jhw->...ihw", matrix, image)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB gamma-encoded values in [0, 1] -> linear light (IEC 61966-2-1)."""
    return torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear light -> sRGB gamma-encoded values (IEC 61966-2-1); no clipping."""
    safe = linear.clamp(min=0.0031308)  # keeps the power's gradient finite on the unused branch
    return torch.where(linear > 0.0031308, 1.055 * safe ** (1 / 2.4) - 0.055, 12.92 * linear)


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> CIE XYZ (D65, Y of white = 1)."""
    _check_image(rgb, "rgb")
    return _apply_matrix(_matrix(_RGB_TO_XYZ, rgb), srgb_to_linear(rgb))


def xyz_to_linear_rgb_matrix(like: torch.Tensor | None = None) -> torch.Tensor:
    """(3, 3) XYZ (D65) -> linear sRGB: the inverse of IEC 61966-2-1's matrix, on ``like``'s device and dtype."""
    inverse = torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64))
    return inverse if like is None else inverse.to(device=like.device, dtype=like.dtype)



def xyz_to_rgb(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) -> sRGB, not clipped: out-of-gamut colours fall outside [0, 1]."""
    _check_image(xyz, "xyz")
    return linear_to_srgb(_apply_matrix(xyz_to_linear_rgb_matrix(xyz), xyz))


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPSILON, t.clamp(min=_EPSILON) ** (1 / 3), (_KAPPA * t + 16) / 116)


def lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    """Inverse of CIE's f(t): t = f^3 above the switch point, linear below (CIE 15:2004)."""
    return torch.where(f ** 3 > _EPSILON, f ** 3, (116 * f - 16) / _KAPPA)


def xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) -> CIELAB: L in [0, 100], a and b roughly in [-128, 128] (CIE 15:2004)."""
    _check_image(xyz, "xyz")
    white = _matrix(WHITE_D65, xyz).view(3, 1, 1)
    fx, fy, fz = _lab_f(xyz / white).unbind(-3)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)


def lab_to_xyz(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB -> CIE XYZ (D65)."""
    _check_image(lab, "lab")
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16) / 116
    fx = fy + a / 500
    fz = fy - b / 200
    white = _matrix(WHITE_D65, lab).view(3, 1, 1)
    xyz = torch.stack((lab_f_inverse(fx), lab_f_inverse(fy), lab_f_inverse(fz)), dim=-3)
    return xyz * white


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> CIELAB (D65): L in [0, 100], a, b in about [-128, 128]."""
    return xyz_to_lab(rgb_to_xyz(rgb))


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIELAB (D65) -> sRGB. With ``clip`` (default) out-of-gamut colours are clipped into [0, 1]."""
    rgb = xyz_to_rgb(lab_to_xyz(lab))
    return rgb.clamp(0, 1) if clip else rgb


def _uv_prime(xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, z = xyz.unbind(-3)
    denominator = x + 15 * y + 3 * z
    # Black has no chromaticity; any value works because u and v are multiplied by L = 0.
    safe = torch.where(denominator.abs() < 1e-12, torch.ones_like(denominator), denominator)
    return 4 * x / safe, 9 * y / safe


def xyz_to_luv(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) -> CIELUV: L in [0, 100], u in about [-83, 175], v in about [-134, 107] for sRGB."""
    _check_image(xyz, "xyz")
    white = _matrix(WHITE_D65, xyz)
    u_white, v_white = _uv_prime(white.view(3, 1, 1))
    y = xyz[..., 1, :, :] / white[1]
    lightness = torch.where(y > _EPSILON, 116 * y.clamp(min=_EPSILON) ** (1 / 3) - 16, _KAPPA * y)
    u_prime, v_prime = _uv_prime(xyz)
    return torch.stack((lightness, 13 * lightness * (u_prime - u_white), 13 * lightness * (v_prime - v_white)), dim=-3)


# the CIE 1976 u', v' of the 1931 2-degree spectral locus span u' 0.00-0.62 and v' 0.02-0.59 (rounded outwards)
LOCUS_U_PRIME = (0.0, 0.63)
LOCUS_V_PRIME = (0.01, 0.60)


def luv_to_xyz(luv: torch.Tensor) -> torch.Tensor:
    """CIELUV (D65) -> CIE XYZ."""
    _check_image(luv, "luv")
    lightness, u, v = luv.unbind(-3)
    white = _matrix(WHITE_D65, luv)
    u_white, v_white = _uv_prime(white.view(3, 1, 1))
    y = torch.where(lightness > 8, ((lightness + 16) / 116) ** 3, lightness / _KAPPA) * white[1]
    safe_l = torch.where(lightness.abs() < 1e-8, torch.ones_like(lightness), lightness)
    u_prime = torch.where(lightness.abs() < 1e-8, u_white, u / (13 * safe_l) + u_white)
    v_prime = torch.where(lightness.abs() < 1e-8, v_white, v / (13 * safe_l) + v_white)
    # Every real colour's chromaticity lies inside the spectral locus; outside it (a predicted u, v too large for a
    # dark pixel's L) x / v' has a pole at v' = 0, where a tiny change flipped a near-black pixel between black and
    # full red. Clamped into the locus's bounding box: real colours unchanged, no pole.
    u_prime = u_prime.clamp(*LOCUS_U_PRIME)
    v_prime = v_prime.clamp(*LOCUS_V_PRIME)
    x = y * 9 * u_prime / (4 * v_prime)
    z = y * (12 - 3 * u_prime - 20 * v_prime) / (4 * v_prime)
    return torch.stack((x, y, z), dim=-3)


def rgb_to_luv(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> CIELUV (D65)."""
    return xyz_to_luv(rgb_to_xyz(rgb))


def luv_to_rgb(luv: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIELUV (D65) -> sRGB, clipped into [0, 1] unless ``clip`` is False."""
    rgb = xyz_to_rgb(luv_to_xyz(luv))
    return rgb.clamp(0, 1) if clip else rgb


def gray_to_lightness(gray: torch.Tensor) -> torch.Tensor:
    """Gamma-encoded gray values in [0, 1], any shape -> CIE L* in [0, 100] (R = G = B = gray)."""
    y = srgb_to_linear(gray)  # for a neutral colour Y equals the linear channel value
    return torch.where(y > _EPSILON, 116 * y.clamp(min=_EPSILON) ** (1 / 3) - 16, _KAPPA * y)


def lightness_to_gray(lightness: torch.Tensor) -> torch.Tensor:
    """CIE L* (0..100), any shape -> the gamma-encoded gray in [0, 1] with that lightness (inverse of
    ``gray_to_lightness``)."""
    return linear_to_srgb(lab_f_inverse((lightness + 16) / 116)).clamp(0, 1)


# ---------------------------------------------------------------------------------------------------------------
# The normalisation every model shares: models see L in [-1, 1] and predict chroma in about [-1, 1].
# ---------------------------------------------------------------------------------------------------------------

COLOR_SPACES = ("lab", "luv")
L_CENTER, L_SCALE = 50.0, 50.0
# Per-channel (centre, scale) of the chroma channels. Lab a/b span about +-110 for sRGB; LUV u spans
# [-83, 175] and v [-134, 107] (sRGB gamut), so LUV gets an offset that centres those ranges.
CHROMA_NORMALISATION = {
    "lab": ((0.0, 0.0), (110.0, 110.0)),
    "luv": ((46.0, -13.5), (129.0, 121.0)),
}


def _chroma_constants(space: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if space not in CHROMA_NORMALISATION:
        raise KeyError(f"unknown colour space {space!r}; expected one of {COLOR_SPACES}")
    center, scale = CHROMA_NORMALISATION[space]
    shape = (2, 1, 1)
    return (torch.tensor(center, device=like.device, dtype=like.dtype).view(shape),
            torch.tensor(scale, device=like.device, dtype=like.dtype).view(shape))


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> [-1, 1]."""
    return (lightness - L_CENTER) / L_SCALE


def denormalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> L* in [0, 100]."""
    return lightness * L_SCALE + L_CENTER


def normalize_chroma(chroma: torch.Tensor, space: str = "lab") -> torch.Tensor:
    """Chroma channels (*, 2, H, W) in Lab a/b or LUV u/v units -> about [-1, 1]."""
    center, scale = _chroma_constants(space, chroma)
    return (chroma - center) / scale


def denormalize_chroma(chroma: torch.Tensor, space: str = "lab") -> torch.Tensor:
    """Normalised chroma (*, 2, H, W) -> Lab a/b or LUV u/v units."""
    center, scale = _chroma_constants(space, chroma)
    return chroma * scale + center


def rgb_to_space(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """sRGB -> ``space`` ("lab" or "luv")."""
    if space == "lab":
        return rgb_to_lab(rgb)
    if space == "luv":
        return rgb_to_luv(rgb)
    raise KeyError(f"unknown colour space {space!r}; expected one of {COLOR_SPACES}")


def space_to_rgb(image: torch.Tensor, space: str, clip: bool = True) -> torch.Tensor:
    """``space`` ("lab" or "luv") -> sRGB in [0, 1] (clipped unless ``clip`` is False)."""
    if space == "lab":
        return lab_to_rgb(image, clip=clip)
    if space == "luv":
        return luv_to_rgb(image, clip=clip)
    raise KeyError(f"unknown colour space {space!r}; expected one of {COLOR_SPACES}")


# --- 8-bit output through lookup tables (the full-resolution merge) -------------------------------------------------

LUT_SIZE = 65536  # 16-bit lookup tables: finer than any 8- or 16-bit input or output step


@functools.lru_cache(maxsize=None)
def _merge_tables() -> tuple[torch.Tensor, torch.Tensor, list]:
    """Lookup tables of the Lab merge: 16-bit gray -> f(Y) (CIE's cube-root function of luminance), and 16-bit
    linear light -> 8-bit sRGB; and the XYZ -> linear RGB rows as numbers. Tables turn the per-pixel powers into
    gathers, the slow part at 50 megapixels."""
    levels = torch.arange(LUT_SIZE, dtype=torch.float64) / (LUT_SIZE - 1)
    f_of_y = (gray_to_lightness(levels) + 16) / 116  # f(Y) = (L* + 16) / 116, exact on both branches
    to_srgb = (linear_to_srgb(levels) * 255).round().to(torch.uint8)
    return f_of_y.float(), to_srgb, xyz_to_linear_rgb_matrix().tolist()


@functools.lru_cache(maxsize=None)
def _merge_tables_on(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list]:
    f_of_y, to_srgb, xyz_to_rgb = _merge_tables()
    return f_of_y.to(device), to_srgb.to(device), xyz_to_rgb


def gray_ab_to_srgb8(gray: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Gray (H, W) in [0, 1] (its own L*) + ab (2, H, W) in Lab units -> uint8 sRGB (H, W, 3), clipped to the gamut.

    The colorizer's full-resolution output step: not differentiable; on the tensors' device; equal to ``lab_to_rgb``
    of (L*(gray), a, b) to within one 8-bit level."""
    f_of_y, to_srgb, xyz_to_rgb = _merge_tables_on(gray.device)
    fy = f_of_y[(gray * (LUT_SIZE - 1)).round_().long()]
    fx = fy + ab[0] / 500
    fz = fy - ab[1] / 200
    y = lab_f_inverse(fy)
    x = lab_f_inverse(fx).mul_(WHITE_D65[0])
    z = lab_f_inverse(fz).mul_(WHITE_D65[2])
    out = torch.empty((*gray.shape, 3), dtype=torch.uint8, device=gray.device)
    for channel, (mx, my, mz) in enumerate(xyz_to_rgb):
        linear = (x * mx).add_(y, alpha=my).add_(z, alpha=mz).clamp_(0, 1)
        out[..., channel] = to_srgb[linear.mul_(LUT_SIZE - 1).round_().long()]
    return out
