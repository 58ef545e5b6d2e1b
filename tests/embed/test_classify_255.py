"""`embed classify` refused more than 254 classes though codes 0..254 and nodata 255 fit the uint8 map (as
`cluster --k 255` does): 255 classes now map with a full colour table, .qml and legend, and 256 are refused saying
why."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from geodino.embed.classify import classify_map
from geodino.errors import InputError
from tests.embed.test_classify import feature_raster, points


def _one_point_per_class(tmp_path, n: int):
    """A 16x16 raster whose cells each hold their own feature vector, and one point label per cell for the first
    `n` cells, named by its index ("0", "1", ...: integer classes keep their own code as pixel value)."""
    f = np.random.default_rng(0).normal(size=(4, 16, 16)).astype(np.float32)
    feats = feature_raster(tmp_path / "f.tif", f)
    pts = [(i % 16, i // 16, str(i)) for i in range(n)]
    return feats, points(tmp_path / f"pts{n}.geojson", pts)


@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")  # sklearn: 1 cell a class
def test_255_classes_fill_codes_0_to_254_and_256_are_refused_with_the_reason(tmp_path):
    import rasterio

    feats, lab = _one_point_per_class(tmp_path, 255)
    with pytest.warns(UserWarning, match="no cross-validation"):  # one labelled cell per class
        m = classify_map(feats, lab, tmp_path / "map.tif", column="landcover", method="knn", neighbors=1)
    assert len(m["classes"]) == 255 and m["values"]["254"] == 254 and m["values"]["0"] == 0
    with rasterio.open(tmp_path / "map.tif") as src:
        cls, cmap = src.read(1), src.colormap(1)
    # 1-NN on the labelled cells themselves: each gets its own class, so code 254 is in the map, 255 (nodata) not
    assert cls.reshape(-1)[:255].tolist() == list(range(255)) and cls.reshape(-1)[255] != 255
    assert cmap[254][3] == 255 and cmap[255][3] == 0
    entries = {e.get("value"): e.get("label") for e in ET.parse(tmp_path / "map.qml").iter("paletteEntry")}
    assert len(entries) == 255 and entries["254"] == "254"
    assert (tmp_path / "map.png").stat().st_size > 0

    feats, lab = _one_point_per_class(tmp_path, 256)
    with pytest.raises(InputError, match=r"holds 256 classes; at most 255 fit a map \(uint8 codes 0\.\.254; 255 "):
        classify_map(feats, lab, tmp_path / "map2.tif", column="landcover", method="knn", neighbors=1)
