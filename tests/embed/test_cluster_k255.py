"""`embed cluster --k 255` was refused ("choose between 2 and 254") though codes 0..254 and nodata 255 fit a uint8
map; 255 clusters now get a full colour table, .qml and legend entries, and 256 is refused saying why."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.embed.products import cluster_map
from geodino.errors import InputError
from tests.embed.test_classify import feature_raster


def test_255_clusters_fill_codes_0_to_254_and_256_is_refused_with_the_reason(tmp_path):
    import rasterio

    f = np.random.default_rng(0).normal(size=(4, 20, 20)).astype(np.float32)
    f[:, 0, 0] = np.nan
    out = cluster_map(feature_raster(tmp_path / "f.tif", f), tmp_path / "c.tif", k=255)
    with rasterio.open(out) as src:
        codes, cmap, tags = src.read(1), src.colormap(1), src.tags()
    assert codes[0, 0] == 255 and codes[1:].max() <= 254 and codes[1:].max() > 200
    assert tags["GEODINO_KMEANS_K"] == "255" and cmap[254][3] == 255 and cmap[255][3] == 0
    qml = (tmp_path / "c.qml").read_text()
    assert qml.count("<paletteEntry ") == 255 and 'label="cluster 254"' in qml
    with pytest.raises(InputError, match=r"^k=256 clusters \(--k 256\): choose between 2 and 255 \(uint8 codes "):
        cluster_map(tmp_path / "f.tif", tmp_path / "d.tif", k=256)
