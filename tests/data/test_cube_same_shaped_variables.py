"""A NetCDF holding two images of the same dimensions (`a`, `b`: band, y, x) was read as its first one without a
word (`geodino embed f.nc` embedded `a`; `b` never looked at). The first is still read, with one warning per store
naming both and --variable; naming the variable reads it without the warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.data.cubes import open_cube


def _two_images(path):
    import xarray as xr

    ds = xr.Dataset(
        {v: (("band", "y", "x"), np.full((3, 8, 8), k, np.float32)) for k, v in enumerate("ab")},
        coords={"band": [1, 2, 3], "y": 100.0 - np.arange(8), "x": np.arange(8.0)},
    )
    ds.to_netcdf(path)
    return str(path)


def test_two_same_shaped_images_warn_once_naming_both(tmp_path):
    path = _two_images(tmp_path / "two.nc")
    with pytest.warns(UserWarning, match=r"2 data variables of dimensions \(band, y, x\): a, b; reading a: pick "):
        cube = open_cube(path, require_crs=False)
    assert float(cube.array.values.max()) == 0.0  # a's value
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        open_cube(path, require_crs=False)  # said once per store
        assert (
            float(open_cube(_two_images(tmp_path / "t2.nc"), variable="b", require_crs=False).array.values.min()) == 1.0
        )
