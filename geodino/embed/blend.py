"""Blending weights for overlapping tiles: raised-cosine ramps, Hann windows, or a hard centre crop.

Every output cell is the weighted mean `sum_t w_t f_t / sum_t w_t` of the tiles covering it, so any positive
weights give a proper average; the shapes below decide how smoothly one tile hands over to the next:

- ``cosine``: weight 1 in the tile's interior and a raised-cosine ramp across each overlap with a neighbour.
  Two overlapping ramps are sin^2 and cos^2 of the same angle, so they sum to exactly 1: the blend is a
  partition of unity on the regular grid (and needs no renormalisation there). Sides that face the raster edge
  have no ramp.
- ``hann``: a separable sin^2 window over the whole tile (evaluated at cell centres, so never zero): the
  features of a tile's centre dominate everywhere, at the price of averaging over more cells.
- ``margin``: with `cosine` and `hann`, the `margin` cells next to an inner tile border get weight 0 (their
  tokens saw the tile edge) and the ramps run over the rest of the overlap (as TerraTorch's `delta`): with a
  margin at least the backbone's reach, the blend equals whole-image inference wherever weights are positive.
- ``center``: a 0/1 mask that keeps, for every cell, only the tile whose centre is closest (the overlap is
  split in two halves); no averaging, the hard seam moves to the middle of the overlap, away from tile borders.

Weights are float32 arrays of shape `[tile, tile]` in output cells.
"""

from __future__ import annotations

import numpy as np

from geodino.errors import ConfigError

BLEND_MODES = ("cosine", "hann", "center")


def ramp_1d(n: int, lo: int, hi: int, mode: str, margin: int = 0) -> np.ndarray:
    """1-D weights for a tile of `n` cells with overlaps `lo` and `hi` (cells) on its two sides.

    `margin` cells at an inner border (a side with an overlap) get weight 0; the cosine ramp spans the
    `overlap - 2 * margin` cells where both tiles are trusted (a hard switch in the middle when that is <= 0).
    """
    i = np.arange(n, dtype=np.float64)
    if mode == "hann":
        w = np.sin(np.pi * (i + 0.5) / n) ** 2
        if lo > 0 and margin > 0:
            w[: min(margin, n)] = 0.0
        if hi > 0 and margin > 0:
            w[max(0, n - margin) :] = 0.0
        return w.astype(np.float32)
    w = np.ones(n, dtype=np.float64)
    if mode == "cosine":
        if lo > 0:
            m = min(margin, lo // 2)
            ramp = lo - 2 * m
            w[:m] = 0.0
            if ramp > 0:
                k = np.arange(ramp, dtype=np.float64)
                w[m : m + ramp] = np.sin(0.5 * np.pi * (k + 0.5) / ramp) ** 2
        if hi > 0:
            m = min(margin, hi // 2)
            ramp = hi - 2 * m
            if ramp > 0:
                k = np.arange(ramp, dtype=np.float64)
                w[n - hi + m : n - m] = np.cos(0.5 * np.pi * (k + 0.5) / ramp) ** 2
            if m:
                w[n - m :] = 0.0
        return w.astype(np.float32)
    if mode == "center":
        # an overlap of L cells is split: the earlier tile keeps its first L - ceil(L/2) cells of it, the later
        # tile the rest, so each cell has exactly one owner (a partition, also for odd L)
        w[: lo // 2] = 0.0
        if hi:
            w[n - (hi - hi // 2) :] = 0.0
        return w.astype(np.float32)
    raise ConfigError(f"blend={mode!r} is not a blending mode; choose one of {', '.join(BLEND_MODES)}")


def tile_weights(n: int, ramps_y: tuple[int, int], ramps_x: tuple[int, int], mode: str, margin: int = 0) -> np.ndarray:
    """2-D weights `[n, n]` of one tile: the outer product of its row and column ramps."""
    return np.outer(ramp_1d(n, *ramps_y, mode, margin), ramp_1d(n, *ramps_x, mode, margin)).astype(np.float32)
