"""A STAC item's declared nodata (`raster:bands` `nodata`, or STAC 1.1 `bands`) marks those pixels invalid, as a
file's own nodata does, when the asset files declare none: one multi-band asset and single-band assets stacked.
Bands that disagree leave the file's own rule; `nodata=` given by the user wins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_scenes
from geodino.embed.stac import read_stac
from tests.embed.conftest import random_image, write_tif

pytest.importorskip("pystac")

NAMES = ("red", "green", "blue")
OPTS = {"tile": 32, "overlap": 8, "progress": False, "scale": 1e-4}
T = from_origin(500000.0, 4000000.0, 10.0, 10.0)


def _bands(nodata: list) -> list[dict]:
    return [{"name": n, "data_type": "uint16", "nodata": v} for n, v in zip(NAMES, nodata, strict=True)]


def _catalog(tmp_path: Path, nodata: list, *, stacked: bool, stac11: bool = False) -> Path:
    """One item over a 64x64 uint16 image whose left half is 0; the files declare no nodata."""
    img = random_image(64, 64, dtype="uint16")
    img[img == 0] = 1
    img[:, :, :32] = 0
    key = "bands" if stac11 else "raster:bands"
    eo = [{"name": n, "common_name": n} for n in NAMES]
    if stacked:
        assets = {}
        for k, n in enumerate(NAMES):
            write_tif(tmp_path / f"{n}.tif", img[k : k + 1], transform=T)
            assets[n] = {"href": f"{n}.tif", "eo:bands": [eo[k]], key: [_bands(nodata)[k]]}
    else:
        write_tif(tmp_path / "img.tif", img, transform=T)
        assets = {"image": {"href": "img.tif", "eo:bands": eo, key: _bands(nodata)}}
    item = {
        "type": "Feature",
        "stac_version": "1.1.0" if stac11 else "1.0.0",
        "id": "S",
        "geometry": None,
        "properties": {"datetime": "2024-06-01T00:00:00Z"},
        "links": [],
        "assets": assets,
    }
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    return path


def _features(tmp_path: Path, bb, items: Path, asset: str, **kw) -> np.ndarray:
    import rasterio

    embed_scenes(str(items), backbone=bb, out=str(tmp_path / "out"), asset=asset, **OPTS, **kw)
    with rasterio.open(tmp_path / "out" / "S.tif") as src:
        return src.read(1)


@pytest.mark.parametrize(("stacked", "stac11"), [(False, False), (True, False), (False, True)])
def test_the_items_declared_nodata_masks_those_pixels(tmp_path, conv_bb, stacked, stac11):
    items = _catalog(tmp_path, [0, 0, 0], stacked=stacked, stac11=stac11)
    asset = ",".join(NAMES) if stacked else "image"
    (scene,) = read_stac(str(items), asset)
    assert scene.nodata == 0.0
    f = _features(tmp_path, conv_bb, items, asset)
    assert np.isnan(f[:, :7]).all()  # cells over the zero half (patch 4: columns 0..7 hold pixels 0..31)
    assert np.isfinite(f[:, 9:]).all()


def test_bands_that_disagree_or_nan_leave_the_files_rule_and_the_users_nodata_wins(tmp_path, conv_bb):
    items = _catalog(tmp_path, [0, 0, 5], stacked=False)
    assert read_stac(str(items), "image")[0].nodata is None
    assert read_stac(str(items), "image", ["red", "green"])[0].nodata == 0.0  # only the bands read count
    f = _features(tmp_path, conv_bb, items, "image")
    assert np.isfinite(f).all()  # no single value declared: the file's own (none) applies
    items = _catalog(tmp_path, ["nan"] * 3, stacked=False)
    assert read_stac(str(items), "image")[0].nodata is None
    items = _catalog(tmp_path, [0, 0, 0], stacked=False)
    f = _features(tmp_path, conv_bb, items, "image", nodata=7, overwrite=True)
    assert np.isfinite(f).all()  # the user's nodata value replaces the item's
