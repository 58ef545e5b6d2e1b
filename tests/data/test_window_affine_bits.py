"""`window_affine` (written out for speed: it runs on every tile) gives bit for bit the transform of composing
with affine's `@` (what it computed before) and the values of rasterio's `window_transform`: north-up, south-up,
rotated and sheared grids, signed zeros, large offsets, Affine / tuple / list inputs and numpy integer offsets;
and `RasterArchive.sample` returns it."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from geodino.data.archive import RasterArchive  # noqa: E402
from geodino.data.rasters import window_affine  # noqa: E402


def _bits(t) -> tuple[bytes, ...]:
    """The exact float64 bit patterns (tells -0.0 from 0.0)."""
    return tuple(struct.pack("<d", float(v)) for v in tuple(t)[:6])


def _transforms():
    rng = np.random.default_rng(0)
    yield Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)
    yield Affine(0.3, -0.0, -180.0, -0.0, 0.3, -90.0)  # south-up with signed zeros
    yield Affine(-0.0, 2.5, 123.456, -2.5, 0.0, 7.0)  # rotated 90 degrees
    yield Affine(1e-5, 0.0, 1e7 + 0.123456789, 0.0, -1e-5, -1e7 - 0.987654321)
    yield Affine.rotation(33.3) * Affine.scale(0.7, -1.3)
    for _ in range(40):
        yield Affine(*rng.normal(0, 100, 6))


@pytest.mark.parametrize("kind", ["affine", "tuple", "list"])
def test_window_affine_is_bit_identical_to_composition(kind):
    offsets = [(0, 0), (5, 7), (-3, 11), (np.int64(255), np.int64(-17)), (12345, 67890), (2.5, -0.5)]
    for t in _transforms():
        given = {"affine": t, "tuple": tuple(t)[:6], "list": list(t)[:6]}[kind]
        for col, row in offsets:
            got = window_affine(given, col, row)
            ref = Affine(*tuple(t)[:6]) @ Affine.translation(col, row)
            assert isinstance(got, Affine)
            assert _bits(got) == _bits(ref), (t, col, row)
            if float(col).is_integer() and float(row).is_integer():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    via_rasterio = rasterio.windows.transform(Window(col, row, 4, 4), t)
                # equal values (rasterio's `*` composition keeps a -0.0 that `@` turns into 0.0)
                assert tuple(got)[:6] == tuple(via_rasterio)[:6], (t, col, row)


def test_sample_transform_is_the_window_transform(tmp_path):
    path = tmp_path / "r.tif"
    t = Affine(0.5, 0.0, 600001.25, 0.0, -0.5, 5000003.75)
    with rasterio.open(
        path, "w", driver="GTiff", width=40, height=30, count=3, dtype="uint8", crs="EPSG:32633", transform=t
    ) as dst:
        dst.write(np.full((3, 30, 40), 9, np.uint8))
    archive = RasterArchive([str(path)], sensor="sat493m", progress=False)
    with rasterio.open(path) as ds:
        for col, row in [(0, 0), (7, 3), (-5, -2), (35, 25)]:
            got = archive.sample(0, col, row, 8, 8)["transform"]
            assert tuple(got)[:6] == tuple(ds.window_transform(Window(col, row, 8, 8)))[:6], (col, row)
