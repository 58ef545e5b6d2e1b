"""A uniform random sample of the valid pixels `geodino data stats` streams (bottom-k, memory bounded whatever the
archive size), and the per-band percentiles written from it."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PERCENTILE_PIXELS", "UniformPixelSample", "percentiles"]

PERCENTILE_PIXELS = 200_000  # the percentiles come from a uniform random subset of this many valid pixels


class UniformPixelSample:
    """A uniform random sample of min(N, `cap`) of the N pixels streamed through `add`, N unknown in advance.

    Bottom-k sampling: every pixel draws a uniform key and the `cap` smallest keys win, so each subset of `cap`
    pixels is equally likely however many pixels are nodata (a keep rate sized from the windows' area gave far
    fewer than `cap` on nodata-heavy scenes). Memory stays within 2 x `cap` pixels: above that the sample is cut
    back to the `cap` smallest keys and later pixels must beat the largest kept key."""

    def __init__(self, cap: int, rng: np.random.Generator) -> None:
        self.cap, self.rng = int(cap), rng
        self.keys: list[np.ndarray] = []
        self.pixels: list[np.ndarray] = []
        self.size = 0
        self.limit = np.inf

    def add(self, pix: np.ndarray) -> None:
        """Offer pixels [C, N]."""
        keys = self.rng.random((pix.shape[1],))  # a tuple: an int typed Any picks the scalar overload
        take = keys < self.limit
        if take.any():
            self.keys.append(keys[take])
            self.pixels.append(pix[:, take])
            self.size += int(take.sum())
        if self.size > 2 * self.cap:
            self._cut()

    def _cut(self) -> None:
        keys, pixels = np.concatenate(self.keys), np.concatenate(self.pixels, axis=1)
        if keys.size > self.cap:
            pick = np.sort(np.argpartition(keys, self.cap - 1)[: self.cap])  # stream order kept
            keys, pixels = keys[pick], pixels[:, pick]
            self.limit = float(keys.max())
        self.keys, self.pixels, self.size = [keys], [pixels], int(keys.size)

    def result(self) -> np.ndarray:
        """The sample [C, min(N, cap)]."""
        self._cut()
        return self.pixels[0]


def percentiles(pix: np.ndarray) -> dict[str, Any]:
    """Per-band 1, 2, 50, 98 and 99 % percentiles of a pixel sample [C, N] (and the sample, for plot_stats)."""
    pct = np.nanpercentile(pix, [1, 2, 50, 98, 99], axis=1)
    out: dict[str, Any] = {f"p{q}": [round(float(v), 6) for v in row] for q, row in zip((1, 2, 50, 98, 99), pct)}
    out["_sample"] = pix  # for plot_stats; dropped before writing
    return out
