"""The class map's overviews per band: the confidence averaged over the valid cells under each overview cell (it was
nearest-sampled with the class band, the COG driver taking one resampling: zoomed out, QGIS showed the confidence of
one cell in 4, 16 ...), the class band only classes found under the cell, both nodata in the same cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin
from rasterio.windows import Window

from geodino.embed.map_outputs import pam_path, write_cog


def _map(h: int = 613, w: int = 701) -> np.ndarray:
    """Class + confidence (nodata 255) with a nodata corner, scattered nodata cells and an odd size."""
    rng = np.random.default_rng(1)
    data = np.stack([rng.integers(0, 4, (h, w)), rng.integers(0, 101, (h, w))]).astype(np.uint8)
    data[:, :9, :13] = 255
    data[:, 100:300:3, 50:400:7] = 255
    return data


def _blocks(a: np.ndarray, f: int, fill: float) -> np.ndarray:
    """[h, w] -> [ceil(h/f), ceil(w/f), f*f]: the full-resolution cells under each cell of a 1/f overview."""
    h, w = a.shape
    H, W = -(-h // f) * f, -(-w // f) * f
    p = np.full((H, W), fill, dtype=np.float64)
    p[:h, :w] = a
    return p.reshape(H // f, f, W // f, f).transpose(0, 2, 1, 3).reshape(H // f, W // f, f * f)


def test_confidence_overviews_average_and_class_overviews_keep_classes(tmp_path: Path) -> None:
    import rasterio
    from rasterio.enums import ColorInterp

    data = _map()
    h, w = data.shape[1:]
    profile = {
        "height": h, "width": w, "count": 2, "dtype": "uint8", "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 4000000.0, 10.0, 10.0), "nodata": 255,
    }  # fmt: skip
    classes = {v: ((40 * v, 255 - 40 * v, 0), f"c{v}") for v in range(4)}
    out = tmp_path / "map.tif"
    write_cog(out, iter([(Window(0, 0, w, h), data)]), profile, classes=classes, bands=("class", "confidence"),
              units=("", "%"))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif", pam_path(out).name]  # levels, VRT removed
    with rasterio.open(out) as d:
        assert d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert d.colorinterp == (ColorInterp.palette, ColorInterp.gray)
        assert d.descriptions == ("class", "confidence") and d.units == (None, "%")
        assert d.colormap(1)[3] == (120, 135, 0, 255) and d.nodatavals == (255.0, 255.0)
        np.testing.assert_array_equal(d.read(), data)
        factors = d.overviews(2)
        assert factors == d.overviews(1) == [2, 4]
    conf, cls = data[1].astype(np.float64), data[0]
    for level, f in enumerate(factors):
        with rasterio.open(out, overview_level=level) as o:
            ov = o.read()
        under_conf, under_cls = _blocks(conf, f, 255), _blocks(cls, f, 255)
        valid = under_conf != 255
        n = valid.sum(axis=2)
        mean = np.where(valid, under_conf, 0).sum(axis=2) / np.maximum(n, 1)
        assert ov.shape[1:] == n.shape
        # the block average of the valid full-resolution cells, rounded once (exact, not an average of averages)
        np.testing.assert_array_equal(ov[1], np.where(n > 0, np.rint(mean), 255))
        # every class cell holds a class found under it (no mixed codes), nodata exactly where the confidence is
        found = (under_cls == ov[0][..., None].astype(np.float64)).any(axis=2)
        assert found[ov[0] != 255].all() and set(np.unique(ov[0])) <= set(np.unique(cls))
        np.testing.assert_array_equal(ov[0] == 255, n == 0)


def test_a_map_one_block_holds_has_no_overviews_and_no_leftovers(tmp_path: Path) -> None:
    import rasterio

    data = _map(200, 180)
    profile = {
        "height": 200, "width": 180, "count": 2, "dtype": "uint8", "crs": "EPSG:32633",
        "transform": from_origin(0.0, 0.0, 10.0, 10.0), "nodata": 255,
    }  # fmt: skip
    out = tmp_path / "small.tif"
    write_cog(out, iter([(Window(0, 0, 180, 200), data)]), profile, classes={0: ((0, 0, 0), "a")},
              bands=("class", "confidence"))  # fmt: skip
    with rasterio.open(out) as d:
        assert d.overviews(1) == d.overviews(2) == [] and d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(d.read(), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.tif", "small.tif.aux.xml"]
