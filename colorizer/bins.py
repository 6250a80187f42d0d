"""Quantised ab bins for classification colourisation (Zhang, Isola & Efros, "Colorful Image Colorization", 2016).

The ab plane is cut into a grid of 10x10 cells; only cells whose centre is an sRGB colour at some lightness are kept
(Zhang et al. keep 313 bins seen in ImageNet; this gamut test keeps a similar set without any data). Targets are
soft-encoded over the 5 nearest bins with a Gaussian (sigma = 5), rare colours are up-weighted by class
rebalancing, and predictions are decoded with the annealed mean.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from colorizer.color import lab_to_rgb

GRID_STEP = 10.0  # width of an ab cell, in Lab units (Zhang et al.)
AB_LIMIT = 110.0  # the grid covers [-110, 110]^2; also the ab normalisation scale (colorizer.color)


@functools.lru_cache(maxsize=None)
def in_gamut_bin_centers(step: float = GRID_STEP, limit: float = AB_LIMIT) -> torch.Tensor:
    """(Q, 2) ab centres, in Lab units, of grid cells whose centre is in the sRGB gamut at some L."""
    grid = torch.arange(-limit, limit + 1e-6, step, dtype=torch.float64)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    lightness = torch.linspace(1, 99, 99, dtype=torch.float64)
    lab = torch.stack(torch.broadcast_tensors(lightness.view(-1, 1, 1), a, b), dim=-3)  # (99, 3, n, n)
    rgb = lab_to_rgb(lab, clip=False)
    inside = ((rgb >= -1e-3) & (rgb <= 1 + 1e-3)).all(dim=-3).any(dim=0)  # (n, n)
    return torch.stack((a[inside], b[inside]), dim=-1).float()


class AbBins(nn.Module):
    """The bin centres (normalised ab) and class-rebalancing weights, as buffers saved with the model."""

    def __init__(self, neighbours: int = 5, sigma: float = 5.0):
        super().__init__()
        centers = in_gamut_bin_centers() / AB_LIMIT
        self.register_buffer("centers", centers)  # (Q, 2), normalised ab
        self.register_buffer("class_weights", torch.ones(len(centers)))  # (Q,), uniform until set from data
        self.neighbours = neighbours
        self.sigma = sigma / AB_LIMIT

    @property
    def count(self) -> int:
        return self.centers.shape[0]

    def _distances(self, ab: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = ab.shape
        points = ab.permute(0, 2, 3, 1).reshape(-1, 2)  # (B*H*W, 2)
        return torch.cdist(points.float(), self.centers.float())  # (B*H*W, Q)

    def nearest(self, ab: torch.Tensor) -> torch.Tensor:
        """Normalised ab (B, 2, H, W) -> index of the nearest bin (B, H, W)."""
        batch, _, height, width = ab.shape
        return self._distances(ab).argmin(dim=1).view(batch, height, width)

    def soft_encode(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ab (B, 2, H, W) -> (indices, weights), each (B, k, H, W): a Gaussian over the k nearest bins."""
        batch, _, height, width = ab.shape
        distances, indices = self._distances(ab).topk(self.neighbours, dim=1, largest=False)  # (N, k)
        weights = torch.softmax(-(distances ** 2) / (2 * self.sigma ** 2), dim=1)
        shape = (batch, height, width, self.neighbours)
        return (indices.view(shape).permute(0, 3, 1, 2), weights.view(shape).permute(0, 3, 1, 2).to(ab.dtype))

    def annealed_mean(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """Logits (B, Q, H, W) -> normalised ab (B, 2, H, W): the mean of softmax(logits / T).

        T = 1 is the plain mean (safe, desaturated); T -> 0 tends to the mode (vivid, can be patchy);
        Zhang et al. use T = 0.38.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        probabilities = torch.softmax(logits.float() / temperature, dim=1)
        return torch.einsum("bqhw,qc->bchw", probabilities, self.centers.float()).to(logits.dtype)

    def decode(self, logits: torch.Tensor, temperature: float, undo_rebalancing: float = 0.0,
               gain: float = 1.0, shift: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, Q, H, W) -> normalised ab: the annealed mean of ``logits - undo_rebalancing * log w + shift``,
        times ``gain``.

        A network trained with class-rebalanced loss weights w over-predicts the rare, saturated bins by about a
        factor w; subtracting ``beta * log w`` takes part of that back (beta = 1: the calibrated posterior, dull),
        and ``gain`` then scales the chroma back up: together they trade hue errors against colourfulness
        differently than the temperature alone does. ``shift`` (Q,): a fitted per-bin prior correction
        (``colorizer.calibration``), already scaled.
        """
        if undo_rebalancing:
            logits = logits.float() - undo_rebalancing * torch.log(self.class_weights.float())[:, None, None]
        if shift is not None:
            logits = logits.float() + shift.to(logits.device, torch.float32)[:, None, None]
        chroma = self.annealed_mean(logits, temperature)
        return chroma * gain if gain != 1.0 else chroma

    @torch.no_grad()
    def set_rebalancing(self, histogram: torch.Tensor, mix: float = 0.5, smoothing_sigma: float = 5.0) -> None:
        """Class-rebalancing weights from empirical bin counts (Zhang et al., Eq. 4).

        w ~ ((1 - mix) * smoothed_prior + mix / Q)^-1, normalised so that the expected weight under the prior is 1.
        """
        prior = histogram.double() / histogram.sum().clamp(min=1)
        centers = self.centers.double() * AB_LIMIT
        kernel = torch.exp(-torch.cdist(centers, centers) ** 2 / (2 * smoothing_sigma ** 2))
        smoothed = kernel @ prior
        smoothed = smoothed / smoothed.sum()
        weights = 1.0 / ((1 - mix) * smoothed + mix / self.count)
        weights = weights / (smoothed * weights).sum()
        self.class_weights.copy_(weights.float())
