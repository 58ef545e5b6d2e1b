"""`to_rgb` on tiles with NaN gaps (a datacube's missing pixels): no `invalid value encountered in cast` warning
(it reached users of `data curate` as a bare `geodino: warning:` line), the gaps painted magenta, the stretch taken
over the finite valid pixels."""

from __future__ import annotations

import warnings

import numpy as np

from geodino.data.preview import to_rgb
from geodino.data.sensors import get_sensor


def test_nan_pixels_are_magenta_without_a_cast_warning():
    img = np.random.default_rng(0).random((3, 8, 8)).astype("float32")
    img[:, :4] = np.nan
    for valid in (~np.isnan(img).any(0), None, np.ones((8, 8), bool)):  # marked invalid, no mask, marked valid
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = to_rgb(img, get_sensor("imagenet"), valid)
        assert out.dtype == np.uint8
        assert (out[:4] == (255, 0, 255)).all()
        assert out[4:].max() == 255 and out[4:].min() == 0  # stretched over the finite half only
