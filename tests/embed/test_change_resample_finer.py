"""`embed change --resample` with B on a finer grid than A: each A cell gets the mean of the B cells it covers."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

from geodino.embed.change import change_map
from tests.embed.test_classify import feature_raster


def test_finer_b_of_the_same_features_gives_zero_distance(tmp_path):
    """B = A at half the cell size (each A cell as 2 x 2 B cells): no change anywhere. Bilinear downsampling widened
    its kernel over A's neighbours and reported distances up to ~0.5 between identical features."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 20, 24)).astype(np.float32)
    b = np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)
    b[:, 10:12, 10:12] = np.nan  # one A cell's B cells all nodata: that A cell is nodata
    b[:, 20, 20] = np.nan  # one of four B cells nodata: the other three still give A's vector
    fa = feature_raster(tmp_path / "a.tif", a)
    fb = feature_raster(tmp_path / "b.tif", b, transform=from_origin(500000.0, 4000000.0, 20.0, 20.0))
    s = change_map(fa, fb, tmp_path / "c.tif", resample=True)
    with rasterio.open(tmp_path / "c.tif") as ds:
        d = ds.read(1)
    assert np.isnan(d[5, 5]) and np.isnan(d).sum() == 1 and s["valid_cells"] == 20 * 24 - 1
    assert np.nanmax(d) < 1e-5
