"""Overviews of the product COGs: the PCA's RGB averages (it took the class maps' nearest, as a uint8 map, so a
zoomed-out view showed one cell in 4 as a speckle of full-resolution colours), class maps keep class values."""

from __future__ import annotations

import numpy as np
import rasterio

from geodino.embed import cluster_map, pca_map
from tests.embed.test_classify import T, feature_raster


def checkerboard(n: int = 600) -> np.ndarray:
    """Two feature vectors alternating cell by cell; an 8x8 nodata corner."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=4), rng.normal(size=4)
    yy, xx = np.mgrid[0:n, 0:n]
    odd = (yy + xx) % 2 == 1
    f = np.where(odd[None], b[:, None, None], a[:, None, None]).astype(np.float32)
    f += rng.normal(scale=0.01, size=f.shape).astype(np.float32)
    f[:, :8, :8] = np.nan
    return f


def test_pca_overviews_average_and_cluster_overviews_keep_classes(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", checkerboard())
    pca = pca_map(feats, tmp_path / "pca.tif")
    with rasterio.open(pca) as ds:
        assert ds.overviews(1) == [2, 4]
        full = ds.read(1).astype(np.float64)
        half = ds.read(1, out_shape=(300, 300)).astype(np.float64)  # GDAL serves the 2x overview
    means = full.reshape(300, 2, 300, 2).mean(axis=(1, 3))
    assert abs(full[100, 100] - full[100, 101]) > 200  # the checkerboard spans the PC1 stretch
    assert np.abs(half[10:, 10:] - means[10:, 10:]).max() <= 1.0  # a 2x2 mean, not one of the 4 cells
    assert (half[:4, :4] == 0).all()  # nodata stays nodata
    out = cluster_map(feats, tmp_path / "k.tif", k=2)
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2, 4]
        ov = ds.read(1, out_shape=(300, 300))
    assert set(np.unique(ov[10:, 10:]).tolist()) <= {0, 1}  # class values only, no averages of codes
    assert (ov[:4, :4] == 255).all()


def test_product_cogs_use_a_predictor_for_their_kind_of_values(tmp_path, caplog):
    """Floats (similar, change): predictor 3; uint8 RGB (pca): 2; class codes: none (all had none). GDAL's COG
    driver takes the option as a word: `1` logged "unexpected value for PREDICTOR" on every class map."""
    import logging

    caplog.set_level(logging.WARNING)
    from rasterio.windows import Window

    from geodino.embed.map_outputs import write_cog

    rng = np.random.default_rng(0)
    kinds = {
        "float": (rng.random((1, 20, 30), dtype=np.float32), "float32", float("nan"), None),
        "rgb": (rng.integers(1, 256, (3, 20, 30)).astype(np.uint8), "uint8", 0, None),
        "classes": (
            rng.integers(0, 2, (1, 20, 30)).astype(np.uint8),
            "uint8",
            255,
            {0: ((0, 0, 0), "a"), 1: ((9, 9, 9), "b")},
        ),
    }
    got = {}
    for name, (arr, dtype, nodata, classes) in kinds.items():
        arr[:, :2, :3] = nodata
        prof = {
            "height": 20,
            "width": 30,
            "count": len(arr),
            "dtype": dtype,
            "crs": "EPSG:32633",
            "transform": T,
            "nodata": nodata,
        }
        out = tmp_path / f"{name}.tif"
        write_cog(out, [(Window(0, 0, 30, 20), arr)], prof, classes=classes, bands=[f"b{i}" for i in range(len(arr))])
        with rasterio.open(out) as ds:
            got[name] = ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR")
            np.testing.assert_array_equal(ds.read(), arr)  # lossless, nodata corner included
    assert got == {"float": "3", "rgb": "2", "classes": None}
    assert not [r.getMessage() for r in caplog.records if "PREDICTOR" in r.getMessage()]
