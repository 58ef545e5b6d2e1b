"""valid_pixels (every tile read's mask) against the rule written out: a pixel is invalid when every band equals a
nodata value its dtype can hold, or (floats) any band is NaN/inf. Pinned before its hot-path rewrite (the first
reduction is the mask, the nodata check cached per value and dtype)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geodino.data.validity import valid_pixels

DTYPES = ["uint8", "uint16", "int16", "float32", "float64", "bool"]
NODATA = [None, 0, 1, 255, -9999, 300, 2.5, math.nan, math.inf, -math.inf]


def _rule(data: np.ndarray, nodata: float | None, axis: int) -> np.ndarray:
    shape = list(data.shape)
    del shape[axis]
    valid = np.ones(shape, dtype=bool)
    if nodata is not None and not math.isnan(nodata):
        if data.dtype.kind in "ui":
            info = np.iinfo(data.dtype)
            holds = float(nodata).is_integer() and info.min <= nodata <= info.max
        elif data.dtype.kind == "b":
            holds = nodata in (0, 1)
        else:
            holds = True
        if holds:
            valid &= ~np.all(data == np.asarray(nodata).astype(data.dtype), axis=axis)
    if data.dtype.kind == "f":
        valid &= np.all(np.isfinite(data), axis=axis)
    return valid


def _data(dtype: str, rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        data = rng.random((3, 9, 11)) > 0.6
    elif dtype.startswith("float"):
        data = rng.normal(0, 100, (3, 9, 11)).astype(dtype)
        data[:, 0, :3] = 0
        data[1, 2, 2], data[0, 3, 3], data[2, 4, 4] = np.nan, np.inf, -np.inf
        data[:, 5, 5] = -9999
        data[:, 6, 6] = np.inf
    else:
        info = np.iinfo(dtype)
        data = rng.integers(max(info.min, -10), min(info.max, 300), (3, 9, 11), endpoint=True).astype(dtype)
        data[:, 0, :3] = 0
        data[:, 1, :2] = 1
        data[:, 7, 7] = min(255, info.max)
        if info.min < 0:
            data[:, 5, 5] = -9999
    return data


@pytest.mark.parametrize("dtype", DTYPES)
def test_valid_pixels_follows_the_rule_for_every_dtype_and_nodata(dtype):
    rng = np.random.default_rng(0)
    data = _data(dtype, rng)
    for nodata in NODATA:
        for axis, arr in ((-3, data), (0, data), (-1, np.moveaxis(data, 0, -1)), (-3, data[None])):
            got = valid_pixels(arr, nodata, band_axis=axis)
            want = _rule(arr, nodata, axis)
            assert got.dtype == bool and got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=f"{dtype} nodata={nodata} axis={axis}")
            got[...] = False  # a fresh array the caller may change, never a view of the data
            assert valid_pixels(arr, nodata, band_axis=axis).sum() == want.sum()
