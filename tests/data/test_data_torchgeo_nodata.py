"""`type: torchgeo` sources ignored the nodata their files declare: torchgeo's read fills masked cells with the
files' nodata value, but the tile's `valid` mask used only the sensor's or the source's nodata, so a tile of a
file's nodata border was all valid and the nodata screening (max_nodata_fraction) never redrew it. The files' own
nodata (or 0, merge's fill, for an internal mask without one) is now the validity rule, as raster sources have."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.data.loaders import SourceConfig, build_source
from geodino.data.sensors import Sensor, save_sensor_yaml

from .conftest import ramp, write_tif


def _source(tmp_path, path, **kw):
    sensor = save_sensor_yaml(Sensor("s", ("a", "b", "c"), 0.5, (0, 0, 0), (1, 1, 1), False), tmp_path / "s.yaml")
    cfg = SourceConfig(
        type="torchgeo", dataset="torchgeo.datasets.RasterDataset", paths=[str(path)], sensor=str(sensor), **kw
    )
    return build_source(cfg)


def _data():
    data = ramp(3, 64, 64)
    data[:, :, :48] = 0  # three quarters of the file are nodata
    return data


def _fractions(src, n=16):
    out = []
    for i in range(n):
        s = src.get(i, 0)
        truth = (s["image"] != 0).any(axis=0)  # the ramp is never 0: 0 only where the file has nodata
        assert np.array_equal(s["valid"], truth)
        out.append(truth.mean())
    return np.array(out)


@pytest.mark.parametrize("max_nodata", [0.5, 1.0])
def test_files_nodata_is_the_valid_mask_and_screens_tiles(tmp_path, max_nodata):
    path = write_tif(tmp_path / "a.tif", _data(), nodata=0)
    src = _source(tmp_path, path, tile_size=16, max_nodata_fraction=max_nodata)
    assert src.nodata == 0
    fractions = _fractions(src)
    if max_nodata == 0.5:  # every tile drawn again until at most half is nodata
        assert fractions.min() >= 0.5
    else:
        assert fractions.min() == 0.0  # nothing screened: fully-nodata tiles come, marked invalid


def test_an_internal_mask_without_nodata_marks_the_cells_torchgeo_fills(tmp_path):
    data = _data()
    path = write_tif(tmp_path / "m.tif", data + 1, nodata=None)  # masked cells hold data (1), merge fills 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
        ds.write_mask(np.where(data[0] > 0, 255, 0).astype("uint8"))
    src = _source(tmp_path, path, tile_size=16, max_nodata_fraction=1.0)
    assert src.nodata == 0
    assert _fractions(src).min() == 0.0


def test_no_declared_nodata_keeps_zeros_valid(tmp_path):
    path = write_tif(tmp_path / "z.tif", _data(), nodata=None)
    src = _source(tmp_path, path, tile_size=16, max_nodata_fraction=1.0)
    assert src.nodata is None
    assert all(src.get(i, 0)["valid"].all() for i in range(4))
