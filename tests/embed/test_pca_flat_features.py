"""A PCA map of features that do not vary says so instead of posing as structure.

Before, constant features gave a flat map tagged explained variance "1.0000,0.0000,0.0000" (all of it in PC1), and
large constant features (1000 + band index) were tagged float round-off ratios such as "0.4465,0.2508,0.2175",
with no word of warning. Now: one UserWarning line, and the tag is 0,0,0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

from geodino.embed import pca_map
from tests.embed.test_classify import feature_raster

FLAT = {
    "zeros": np.zeros((8, 24, 24), np.float32),
    "constant": np.full((8, 24, 24), 0.3, np.float32),
    "large_constant": np.full((8, 24, 24), 1000.0, np.float32) + np.arange(8, dtype=np.float32)[:, None, None],
}


@pytest.mark.parametrize("name", list(FLAT))
def test_constant_features_warn_and_tag_no_explained_variance(tmp_path, name: str) -> None:
    src = feature_raster(tmp_path / f"{name}.tif", FLAT[name])
    with pytest.warns(UserWarning, match="the features do not vary over 500 sampled cells") as rec:
        out = pca_map(src, tmp_path / "pca.tif", sample=500, png=tmp_path / "pca.png")
    msg = next(str(w.message) for w in rec if "do not vary" in str(w.message))
    assert "\n" not in msg and "tagged 0,0,0" in msg
    assert not [w for w in rec if issubclass(w.category, RuntimeWarning)]  # sklearn's 0/0 is not a second line
    with rasterio.open(out) as ds:
        assert ds.tags()["GEODINO_PCA_EXPLAINED_VARIANCE"] == "0.0000,0.0000,0.0000"
        assert len(np.unique(ds.read())) == 1  # the map is one flat colour, as the warning says


def test_small_but_real_variation_is_mapped_without_warning(tmp_path) -> None:
    """Features of magnitude 1e-4 that do vary are structure: no warning, ratios that sum to at most 1."""
    f = (np.random.default_rng(0).normal(size=(8, 24, 24)) * 1e-4).astype(np.float32)
    src = feature_raster(tmp_path / "small.tif", f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = pca_map(src, tmp_path / "pca.tif", sample=500)
    with rasterio.open(out) as ds:
        ratios = [float(v) for v in ds.tags()["GEODINO_PCA_EXPLAINED_VARIANCE"].split(",")]
    assert all(r > 0.05 for r in ratios) and sum(ratios) <= 1.0
