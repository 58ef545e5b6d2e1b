"""`file_mask` / `read_window(use_mask=True)` keep which own mask applies per handle (a header fact): the mask read is
still each file's own (internal mask, alpha band left out of the read, a WarpedVRT's added alpha, none), two
handles with the same bands never share one, and a handle open for update sees a mask written after a read."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402
from rasterio.vrt import WarpedVRT  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from geodino.data.rasters import file_mask, read_window  # noqa: E402

T = Affine(10, 0, 500000, 0, -10, 4650000)


def _prof(count, dtype, **extra):
    prof = dict(driver="GTiff", width=48, height=40, count=count, dtype=dtype, crs="EPSG:32633", transform=T)
    return {**prof, **extra}


def _masked(path, mask, **extra):
    data = np.random.default_rng(0).integers(1, 3000, (5, 40, 48)).astype("uint16")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **_prof(5, "uint16", **extra)) as dst:
            dst.write(data)
            if mask is not None:
                dst.write_mask(mask)
    return str(path)


def _rgba(path):
    data = np.random.default_rng(1).integers(1, 256, (4, 40, 48)).astype("uint8")
    data[3] = 255
    data[3, :, :11] = 0
    with rasterio.open(path, "w", **_prof(4, "uint8", photometric="RGB", alpha="YES")) as dst:
        dst.write(data)
    return str(path)


def test_each_handle_reads_its_own_mask(tmp_path):
    mask = np.full((40, 48), 255, np.uint8)
    mask[5:17, 20:31] = 0
    masked, plain, rgba = (
        _masked(tmp_path / "m.tif", mask),
        _masked(tmp_path / "p.tif", None),
        _rgba(tmp_path / "a.tif"),
    )
    win = Window(3, 2, 30, 25)
    for _ in range(3):  # the first read finds the plan, the next ones reuse it
        with rasterio.open(masked) as a, rasterio.open(plain) as b, rasterio.open(rgba) as c:
            bands = (1, 2, 3)
            np.testing.assert_array_equal(file_mask(a, bands, window=win), mask[2:27, 3:33] > 0)
            assert file_mask(b, bands, window=win) is None
            np.testing.assert_array_equal(file_mask(c, bands, window=win), c.read(4, window=win) > 0)
            _, valid = read_window(a, (5, 4), -4, -3, 20, 20, use_mask=True)
            expected = np.zeros((20, 20), bool)
            expected[3:, 4:] = mask[:17, :16] > 0
            np.testing.assert_array_equal(valid, expected)
            _, valid = read_window(b, (5, 4), -4, -3, 20, 20, use_mask=True)
            assert valid.sum() == 17 * 16


def test_a_warped_vrts_added_alpha_is_its_mask(tmp_path):
    big = Affine(5000, 0, 300000, 0, -5000, 7800000)  # 240 x 200 km at 70 N: skewed in EPSG:4326
    plain = _masked(tmp_path / "p.tif", None, transform=big)
    with rasterio.open(plain) as src, WarpedVRT(src, crs="EPSG:4326", add_alpha=True) as vrt:
        alpha = vrt.read(vrt.count)
        assert (alpha == 0).any() and (alpha > 0).any()  # corners outside the rotated footprint
        for _ in range(2):
            np.testing.assert_array_equal(file_mask(vrt, (1, 2)), alpha > 0)
            _, valid = read_window(vrt, (1, 2), 0, 0, vrt.width, vrt.height, use_mask=True)
            np.testing.assert_array_equal(valid, alpha > 0)


def test_an_update_handle_sees_a_mask_written_after_a_read(tmp_path):
    path = _masked(tmp_path / "u.tif", None)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
        assert file_mask(ds, (1,)) is None
        mask = np.full((40, 48), 255, np.uint8)
        mask[:10] = 0
        ds.write_mask(mask)
        np.testing.assert_array_equal(file_mask(ds, (1,)), mask > 0)
