"""Multispectral brightness/contrast factors stay >= 0 (as the RGB path's), so a strong setting never inverts a band."""

from __future__ import annotations

import numpy as np

from geodino.data.augment import draw_band_params
from geodino.data.config import CropsConfig


def test_multispectral_factors_are_never_negative_with_settings_above_one():
    cfg = CropsConfig(jitter_prob=1.0, brightness=1.5, contrast=1.8, band_jitter=1.2)
    rng = np.random.default_rng(0)
    n = 4
    params = np.stack([draw_band_params(rng, cfg, n, blur_p=0.0) for _ in range(400)])
    factors = params[:, 1 : 1 + 2 * n]
    assert (factors >= 0).all(), factors.min()
    assert factors.max() > 2.0  # the upper range is kept


def test_factors_of_usual_settings_are_drawn_as_before():
    """Settings <= 1 draw the same values (same bounds, same generator calls): runs stay reproducible."""
    cfg = CropsConfig(jitter_prob=1.0, brightness=0.4, contrast=0.4, band_jitter=0.1)
    got = draw_band_params(np.random.default_rng(3), cfg, 3, blur_p=0.0)
    rng = np.random.default_rng(3)
    rng.random()
    b = rng.uniform(0.6, 1.4) * rng.uniform(0.9, 1.1, 3)
    c = rng.uniform(0.6, 1.4) * rng.uniform(0.9, 1.1, 3)
    np.testing.assert_allclose(got[1:7], np.concatenate([b, c]).astype(np.float32), rtol=1e-6)
