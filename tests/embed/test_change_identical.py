"""`embed change` of identical feature rasters is exactly 0 everywhere (float32 `1 - cos` of unit copies left up
to ~2e-6 for 768 features), and other cells keep the float64 reference distance."""

from __future__ import annotations

import numpy as np

from geodino.embed.change import change_map
from tests.embed.test_classify import feature_raster


def test_identical_rasters_give_exactly_zero(tmp_path):
    import rasterio

    rng = np.random.default_rng(0)
    a = (rng.normal(size=(384, 12, 16)) * 3.0 + 1.0).astype(np.float32)
    a[:, 0, 0] = np.nan  # nodata stays nodata
    fa = feature_raster(tmp_path / "a.tif", a)
    fb = feature_raster(tmp_path / "b.tif", a.copy())
    s = change_map(fa, fb, tmp_path / "c.tif")
    with rasterio.open(tmp_path / "c.tif") as ds:
        d = ds.read(1)
    assert np.isnan(d[0, 0]) and s["valid_cells"] == 12 * 16 - 1
    ok = ~np.isnan(d)
    assert (d[ok] == 0.0).all(), float(np.nanmax(d))
    assert s["p99"] == 0.0  # was 0.001: the upper edge of the histogram bin holding it


def test_p99_is_the_percentile_or_at_most_one_bin_width_above():
    """`_p99` from the block histogram and each bin's largest distance, against numpy's percentile of the cells
    (the cell of rank ceil(0.99 n)); exact where that cell is its bin's largest."""
    from geodino.embed.change import BINS, _bin_of, _p99

    rng = np.random.default_rng(2)
    edges = np.linspace(0.0, 2.0, BINS + 1)
    on_edges = np.r_[edges, np.nextafter(edges[1:], 0), rng.uniform(0, 2, 1000)].astype(np.float32)
    np.testing.assert_array_equal(
        np.bincount(_bin_of(on_edges, edges), minlength=BINS), np.histogram(on_edges, bins=edges)[0]
    )  # the bins Otsu's threshold reads are np.histogram's
    for v in (rng.uniform(0.2, 0.3, 5000), np.r_[np.zeros(990), np.full(10, 0.7)], np.r_[np.full(99, 0.0104), 1.5]):
        v = v.astype(np.float32)
        where = _bin_of(v, edges)
        top = np.full(BINS, -1.0, np.float32)
        np.maximum.at(top, where, v)
        p99, edge = _p99(np.bincount(where, minlength=BINS), top, edges, v.size)
        true = float(np.percentile(v, 99, method="inverted_cdf"))
        assert true <= p99 < true + 2.0 / BINS and p99 <= edge, (true, p99, edge)
    assert p99 == true == np.float32(0.0104) and edge > 0.0105  # rank 99 of 100 is its bin's largest: exact


def test_cosine_distance_matches_float64_and_its_edge_cases():
    from geodino.embed.change import cosine_distance

    rng = np.random.default_rng(1)
    fa = rng.normal(size=(768, 4, 5)).astype(np.float32)
    fb = (fa + rng.normal(scale=0.5, size=fa.shape)).astype(np.float32)
    fb[:, 0, 0] = -fa[:, 0, 0]  # opposite: 2
    fb[:, 0, 1] = 0.0  # a zero vector: 1
    fb[:, 0, 2] = fa[:, 0, 2]  # equal: 0
    a64, b64 = fa.astype(np.float64), fb.astype(np.float64)
    ref = 1 - np.sum(a64 * b64, 0) / np.maximum(np.linalg.norm(a64, axis=0) * np.linalg.norm(b64, axis=0), 1e-300)
    d = cosine_distance(fa, fb)
    assert d.dtype == np.float32 and d.shape == (4, 5)
    np.testing.assert_allclose(d, np.clip(ref, 0, 2), atol=3e-6)
    assert d[0, 0] == 2.0 and d[0, 1] == 1.0 and d[0, 2] == 0.0
