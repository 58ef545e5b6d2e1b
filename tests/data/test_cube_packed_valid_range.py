"""CF valid ranges on packed datacube variables, and netCDF's default range from _FillValue.

CF: valid_min/valid_max/valid_range are of the packed type (compared with raw values) unless they are of the type
of scale_factor/add_offset, in which case they are unpacked values. Before, a float valid_range [0.0, 1.0] on int16
DN * 1e-4 was compared with the raw DN, so every pixel but DN 0 and 1 was invalid (the whole cube skipped). NUG
(netCDF attribute conventions, as netCDF4-python applies them): with no valid range declared, an explicit positive
_FillValue is a valid maximum, any other a valid minimum. Expected masks are computed here with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geodino.data.cubes import CubeSource, open_cube
from geodino.data.sensors import Sensor

H, W = 16, 15


def _coords():
    return {"y": 5_000_000.0 - (np.arange(H) + 0.5) * 10, "x": 300_000.0 + (np.arange(W) + 0.5) * 10}


def _zarr(tmp_path, dn: np.ndarray, **attrs):
    import rioxarray  # noqa: F401
    import xarray as xr

    ds = xr.Dataset({"dn": (("y", "x"), dn)}, coords=_coords()).rio.write_crs("EPSG:32633")
    ds["dn"].attrs.update(attrs)
    path = tmp_path / "c.zarr"
    ds.to_zarr(path, zarr_format=2)
    return str(path)


def _valid(path: str, scale: float = 1e-4, offset: float = 0.0) -> np.ndarray:
    sensor = Sensor("x", ("dn",), scale, (0.0,), (1.0,), False, nodata=None, offset=offset)
    return CubeSource(path, sensor=sensor, tile_size=8).read(0, 0, 0, W, H, None)["valid"]


def _dn(dtype="int16") -> np.ndarray:
    return np.arange(-500, 12000, 52)[: H * W].reshape(H, W).astype(dtype)  # -500 .. 11888


def test_a_float_valid_range_on_packed_integers_is_in_physical_units(tmp_path):
    dn = _dn()
    path = _zarr(tmp_path, dn, scale_factor=np.float32(1e-4), add_offset=np.float32(0.0),
                 valid_range=np.array([0.0, 1.0], np.float32))  # fmt: skip
    assert open_cube(path).valid_ranges == ((0.0, 10000.0),)
    want = (dn >= 0) & (dn <= 10000)
    assert 0 < want.sum() < want.size
    np.testing.assert_array_equal(_valid(path), want)  # old code: 1 valid pixel (DN 0 <= v <= 1)


def test_float_valid_min_max_with_an_offset(tmp_path):
    """Sentinel-2 L2A baseline >= 04.00 style: DN * 1e-4 - 0.1; valid_min -0.1 and valid_max 1.0 (physical) are
    DN 0 and 11000."""
    dn = _dn()
    path = _zarr(tmp_path, dn, scale_factor=1e-4, add_offset=-0.1, valid_min=-0.1, valid_max=1.0)
    assert open_cube(path).valid_ranges == ((0.0, 11000.0),)
    np.testing.assert_array_equal(_valid(path, offset=-0.1), (dn >= 0) & (dn <= 11000))


def test_an_integer_valid_range_beside_scale_factor_stays_packed(tmp_path):
    dn = _dn()
    path = _zarr(tmp_path, dn, scale_factor=1e-4, valid_range=np.array([0, 10000], np.int16))
    assert open_cube(path).valid_ranges == ((0.0, 10000.0),)


def test_a_decoded_object_keeps_a_float_range_as_it_is(tmp_path):
    """xarray decoded the store (values unpacked, scale_factor in encoding): a float range is already in its units
    (old code unpacked it again: (0, 1e-4))."""
    import xarray as xr

    path = _zarr(tmp_path, _dn(), scale_factor=1e-4, valid_range=np.array([0.0, 1.0], np.float32))
    ds = xr.open_zarr(path)
    assert ds["dn"].encoding.get("scale_factor") == pytest.approx(1e-4)
    (rng,) = open_cube(ds, require_crs=False).valid_ranges
    assert rng == pytest.approx((0.0, 1.0))


def test_an_unsigned_variable_keeps_a_float_range(tmp_path):
    """NetCDF3-style int16 + _Unsigned with a float valid_range [0.0, 5.0] (physical) and scale 1e-4: DN up to
    50000 valid. Old code cast the float range to int16 and back (then compared 0..5 with raw DN)."""
    import xarray as xr

    raw = np.array([[100, 40000], [60000, 7]], np.uint16).view(np.int16)
    ds = xr.Dataset({"dn": (("y", "x"), raw)}, coords={"y": [1.5, 0.5], "x": [0.5, 1.5]})
    ds["dn"].attrs.update(_Unsigned="true", scale_factor=np.float32(1e-4), valid_range=np.array([0.0, 5.0], "f4"))
    assert open_cube(ds, require_crs=False, warn_unplaced=False).valid_ranges == ((0.0, 50000.0),)


@pytest.mark.parametrize(("fill", "kind"), [(-9999.0, "float32"), (-9999, "int16"), (30000, "int16")])
def test_no_range_declared_the_fill_value_bounds_the_data(tmp_path, fill, kind):
    """Fill -9999: values below it (-10000, a sentinel the file did not declare) are invalid, the fill itself is
    nodata; fill 30000 (positive): values above it are invalid. Other values are data."""
    dn = np.full((H, W), 1200, dtype=kind)
    dn[0, :3] = fill
    if fill < 0:
        dn[1, :4] = -10000
        dn[2, 0] = -9998
    else:
        dn[1, :4] = 30001
        dn[2, 0] = 29999
    path = _zarr(tmp_path, dn, _FillValue=np.asarray(fill, dtype=kind)[()])
    lo, hi = (fill, math.inf) if fill < 0 else (-math.inf, fill)
    assert open_cube(path).valid_ranges == ((float(lo), float(hi)),)
    want = (dn >= lo) & (dn <= hi) & (dn != fill)
    assert want.sum() == H * W - 7
    np.testing.assert_array_equal(_valid(path, scale=1.0), want)


def test_a_zero_fill_stays_exact(tmp_path):
    """_FillValue 0 on signed data (a dB cube): no range from it (as a valid minimum it would mask every negative
    value); only the exact 0 is nodata."""
    db = np.linspace(-25.0, 5.0, H * W, dtype=np.float32).reshape(H, W)
    db[0, 0] = 0.0
    path = _zarr(tmp_path, db, _FillValue=np.float32(0.0))
    assert open_cube(path).valid_ranges == ()
    np.testing.assert_array_equal(_valid(path, scale=1.0), db != 0)
