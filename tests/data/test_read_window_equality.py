"""`read_window`/`read_bands` (whose hot path caches the per-file band types) read exactly what an independent
computation gives: rasterio's own boundless read filled with the fill value, and the validity rule written out
with numpy (every band nodata, any band non-finite, outside the raster, the file's mask), on uint8, uint16, int16
with a negative nodata, float32 with NaN, a 13-band tiled COG, a mixed-dtype VRT stack and an RGBA file; full
windows, windows across each edge and corner, and windows wholly outside."""

from __future__ import annotations

import math

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from geodino.data.rasters import read_bands, read_dtype, read_window  # noqa: E402


def _write(path, data, nodata=None, **extra):
    count, h, w = data.shape
    prof = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype.name, crs="EPSG:32633")
    prof.update(transform=Affine(10, 0, 500000, 0, -10, 4650000), nodata=nodata, **extra)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
    return str(path)


def _stack_vrt(bands, w, h):
    """A VRT stacking (file, band, GDAL type) sources, one band each, in their own data types."""
    body = "".join(
        f'<VRTRasterBand dataType="{t}" band="{k}"><SimpleSource><SourceFilename relativeToVRT="0">{f}'
        f"</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
        for k, (f, b, t) in enumerate(bands, start=1)
    )
    geo = "500000, 10, 0, 4650000, 0, -10"
    return f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><GeoTransform>{geo}</GeoTransform>{body}</VRTDataset>'


def _files(tmp_path):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (3, 61, 53)).astype("uint8")
    u8[:, :7, :9] = 0
    u16 = rng.integers(0, 4000, (4, 40, 70)).astype("uint16")
    u16[:, 30:, :] = 0
    u16[1, 5:9, 5:9] = 0  # one band 0: still valid
    i16 = rng.integers(-500, 500, (2, 45, 45)).astype("int16")
    i16[:, 10:20, 10:20] = -9999
    f32 = rng.random((3, 33, 37)).astype("float32")
    f32[0, 3:6, 3:6] = np.nan
    f32[2, 20, 20] = np.inf
    s2 = rng.integers(1, 3000, (13, 96, 96)).astype("uint16")
    s2[:, :20, :20] = 0
    out = {
        "uint8": (_write(tmp_path / "u8.tif", u8, nodata=0), 0.0, False),
        "uint16": (_write(tmp_path / "u16.tif", u16, nodata=0), 0.0, False),
        "int16": (_write(tmp_path / "i16.tif", i16, nodata=-9999), -9999.0, False),
        "float32": (_write(tmp_path / "f32.tif", f32, nodata=None), None, False),
        "cog13": (
            _write(tmp_path / "s2.tif", s2, nodata=0, tiled=True, blockxsize=32, blockysize=32, compress="deflate"),
            0.0,
            False,
        ),
    }
    rgba = rng.integers(1, 256, (4, 30, 30)).astype("uint8")
    rgba[3] = 255
    rgba[3, :10, :] = 0
    out["rgba"] = (_write(tmp_path / "rgba.tif", rgba, photometric="RGB", alpha="YES"), None, True)
    # a `data stack` VRT: uint16 reflectance beside a uint8 class band (read band by band, in uint16)
    cls = rng.integers(0, 9, (1, 40, 70)).astype("uint8")
    a, b = _write(tmp_path / "refl.tif", u16[:2], nodata=None), _write(tmp_path / "cls.tif", cls, nodata=None)
    vrt = tmp_path / "stack.vrt"
    vrt.write_text(_stack_vrt([(a, 1, "UInt16"), (a, 2, "UInt16"), (b, 1, "Byte")], 70, 40))
    out["mixed_vrt"] = (str(vrt), None, False)
    return out


def _expected(ds, indexes, col, row, w, h, nodata, use_mask):
    """rasterio's boundless read and the validity rule, computed independently of geodino."""
    dtype = np.result_type(*[np.dtype(ds.dtypes[i - 1]) for i in indexes])
    fits = nodata is not None and not math.isnan(nodata)
    if fits and dtype.kind in "ui":
        info = np.iinfo(dtype)
        fits = float(nodata).is_integer() and info.min <= nodata <= info.max
    fill = nodata if fits else 0
    win = Window(col, row, w, h)
    data = np.stack([ds.read(i, window=win, boundless=True, fill_value=fill, out_dtype=dtype) for i in indexes]).astype(
        dtype
    )
    inside = np.zeros((h, w), bool)
    rows, cols = np.arange(row, row + h), np.arange(col, col + w)
    inside[np.ix_((rows >= 0) & (rows < ds.height), (cols >= 0) & (cols < ds.width))] = True
    valid = inside.copy()
    if fits:
        valid &= ~np.all(data == np.array(nodata).astype(dtype), axis=0)
    if dtype.kind == "f":
        valid &= np.all(np.isfinite(data), axis=0)
    if use_mask:
        valid &= ds.read(4, window=win, boundless=True, fill_value=0) > 0
    data[:, ~inside] = fill  # outside the raster: the fill value, whatever a boundless read puts there
    return data, valid


WINDOWS = [(0, 0, 16, 16), (5, 3, 20, 12), (-6, -4, 16, 16), (-3, 10, 8, 8), (10, -5, 9, 9)]


@pytest.mark.parametrize("name", ["uint8", "uint16", "int16", "float32", "cog13", "rgba", "mixed_vrt"])
def test_read_window_equals_independent_read(tmp_path, name):
    path, nodata, use_mask = _files(tmp_path)[name]
    with rasterio.open(path) as ds:
        indexes = (1, 2, 3) if name == "rgba" else tuple(range(1, ds.count + 1))
        if name == "cog13":
            indexes = (4, 3, 2, 8)  # a subset, reordered
        windows = [
            *WINDOWS,
            (ds.width - 7, ds.height - 5, 16, 16),  # bottom-right corner
            (ds.width - 16, 0, 16, 16),  # flush with the right edge: a full window
            (ds.width + 3, 2, 8, 8),  # wholly outside
            (0, 0, ds.width, ds.height),
        ]
        for col, row, w, h in windows * 2:  # twice: the cached band types give the same reads
            data, valid = read_window(ds, indexes, col, row, w, h, nodata=nodata, use_mask=use_mask)
            exp_data, exp_valid = _expected(ds, indexes, col, row, w, h, nodata, use_mask)
            where = f"{name} window {(col, row, w, h)}"
            assert data.dtype == exp_data.dtype == read_dtype(ds, indexes), where
            assert data.shape == (len(indexes), h, w), where
            assert np.array_equal(data, exp_data, equal_nan=data.dtype.kind == "f"), where
            assert valid.dtype == bool and np.array_equal(valid, exp_valid), where
            if 0 <= col and 0 <= row and col + w <= ds.width and row + h <= ds.height:
                direct = read_bands(ds, indexes, window=Window(col, row, w, h))
                assert np.array_equal(direct, exp_data, equal_nan=True), where


def test_band_types_follow_the_handle_not_a_stale_cache(tmp_path):
    """Two files with the same band count but other data types, read in turn: each read has its own file's type."""
    rng = np.random.default_rng(1)
    a = _write(tmp_path / "a.tif", rng.integers(0, 255, (2, 20, 20)).astype("uint8"))
    b = _write(tmp_path / "b.tif", rng.integers(-30000, 30000, (2, 20, 20)).astype("int16"))
    for _ in range(2):
        for path, dtype in ((a, np.uint8), (b, np.int16)):
            with rasterio.open(path) as ds:
                data, _ = read_window(ds, (1, 2), -2, -2, 10, 10)
                assert data.dtype == dtype
                assert np.array_equal(data[:, 2:, 2:], ds.read(window=Window(0, 0, 8, 8)))
