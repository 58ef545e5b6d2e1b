"""Per-band running statistics (`RunningStats`: count, mean and variance merged tile by tile) and the check that
says when they are unusable (`warn_degenerate`: too few valid pixels, or a constant band).

The accumulator and the thresholds that judge its result (`MIN_VALID_PIXELS`, `STD_FLOOR`) are one concept apart
from `geodino data stats`' choice of windows, sensors and outputs (`stats.py`, which re-exports these names).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["MIN_VALID_PIXELS", "STD_FLOOR", "RunningStats", "warn_degenerate"]


class RunningStats:
    """Per-band count, mean and M2 merged tile by tile (Chan et al.), float64."""

    def __init__(self, n_bands: int) -> None:
        self.count = np.zeros(n_bands, dtype=np.float64)
        self.mean = np.zeros(n_bands, dtype=np.float64)
        self.m2 = np.zeros(n_bands, dtype=np.float64)

    def update(self, image: np.ndarray, valid: np.ndarray) -> None:
        """Add the valid pixels of `image` [C,H,W] (NaNs ignored per band)."""
        x = image.reshape(image.shape[0], -1)[:, valid.reshape(-1)].astype(np.float64)
        if x.size == 0:
            return
        finite = np.isfinite(x)
        n_b = finite.sum(axis=1).astype(np.float64)
        x = np.where(finite, x, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(n_b > 0, x.sum(axis=1) / np.maximum(n_b, 1), 0.0)
            m2_b = (np.where(finite, x - mean_b[:, None], 0.0) ** 2).sum(axis=1)
        n = self.count + n_b
        delta = mean_b - self.mean
        safe = np.maximum(n, 1)
        self.mean = self.mean + delta * n_b / safe
        self.m2 = self.m2 + m2_b + delta**2 * self.count * n_b / safe
        self.count = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / np.maximum(self.count - 1, 1))


STD_FLOOR = 1e-4
"""A band whose std (in the YAML's units: reflectance after the scale) is below this is constant or nearly: a model
standardising with it would multiply the band by 10,000 or more (std is written floored at 1e-6). 1e-4 is one DN
of 16-bit data at scale 1e-4, and 1/39 of one DN of 8-bit data at 1/255."""
MIN_VALID_PIXELS = 1000
"""Fewer valid pixels than this for a band (a 32 x 32 window holds 1,024) give a mean and std too noisy to use."""


def warn_degenerate(names: list[str], stats: RunningStats) -> None:
    """One warning line naming the bands with fewer than MIN_VALID_PIXELS valid pixels, and one naming those whose
    std is below STD_FLOOR, each with its valid pixel count: the YAML is written, but using it would be a mistake
    (a constant band in an archive is usually one too: leave it out with --bands)."""

    def listed(idx: list[int]) -> str:
        counts = {int(stats.count[i]) for i in idx}
        if len(counts) == 1:
            n = counts.pop()
            return f"{', '.join(names[i] for i in idx)} ({n:,} valid {'pixel' if n == 1 else 'pixels'})"
        return ", ".join(f"{names[i]} ({int(stats.count[i]):,})" for i in idx)

    std = stats.std
    few = [i for i in range(len(names)) if stats.count[i] < MIN_VALID_PIXELS]
    flat = [i for i in range(len(names)) if std[i] < STD_FLOOR and i not in few]

    def factor(idx: list[int]) -> str:  # what standardising with the written std does to the band
        return f"{1 / max(float(min(std[i] for i in idx)), 1e-6):,.0f}"

    if few:
        low = [i for i in few if std[i] < STD_FLOOR]
        warnings.warn(
            f"{'band' if len(few) == 1 else 'bands'} {listed(few)}: fewer than {MIN_VALID_PIXELS:,} valid pixels, so "
            f"the mean and std are unreliable{f' (a model would multiply by up to {factor(low)})' if low else ''}; "
            "read more data (more files, a larger --samples) or check nodata before using this YAML",
            stacklevel=3,
        )
    if flat:
        one = len(flat) == 1
        warnings.warn(
            f"{'band' if one else 'bands'} {listed(flat)} {'is' if one else 'are'} constant or nearly (std below "
            f"{STD_FLOOR:g}): a model standardising with this YAML would multiply {'it' if one else 'them'} by up to "
            f"{factor(flat)}; leave {'it' if one else 'them'} out with --bands, or read more of the archive",
            stacklevel=3,
        )
