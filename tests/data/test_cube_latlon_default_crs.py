"""A lat/lon datacube that declares no CRS at all (no grid_mapping, no crs attribute) is read in EPSG:4326, as GDAL
and rioxarray read such grids, with one warning naming the store; only when both the coordinate names and their
value ranges are geographic. x/y grids without a CRS stay refused, as do lat/lon names over metre values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.data.cubes import open_cube
from geodino.errors import InputError
from tests.helpers import write_zarr3


def _store(path, ydim: str = "lat", xdim: str = "lon", y0: float = 45.0, x0: float = 10.0, step: float = 0.01):
    """A (band, y, x) uint16 store of 20 x 30 cells, rows north to south, with no CRS anywhere."""
    import xarray as xr

    ys = y0 - step * (np.arange(20) + 0.5)
    xs = x0 + step * (np.arange(30) + 0.5)
    data = np.arange(3 * 20 * 30, dtype="uint16").reshape(3, 20, 30)
    da = xr.DataArray(data, dims=("band", ydim, xdim), coords={"band": ["B02", "B03", "B04"], ydim: ys, xdim: xs})
    write_zarr3(da.to_dataset(name="reflectance"), path)
    return str(path)


@pytest.mark.parametrize(("ydim", "xdim"), [("lat", "lon"), ("latitude", "longitude")])
def test_lat_lon_cube_without_crs_is_placed_in_epsg_4326_with_one_warning(tmp_path, ydim, xdim):
    from rasterio.crs import CRS

    store = _store(tmp_path / "ll.zarr", ydim, xdim)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc = open_cube(store)
    said = [str(w.message) for w in caught if "EPSG:4326" in str(w.message)]
    assert len(said) == 1 and "ll.zarr" in said[0] and "declares no CRS" in said[0] and "write_crs" in said[0]
    assert CRS.from_wkt(sc.crs) == CRS.from_epsg(4326)
    np.testing.assert_allclose(sc.transform, (0.01, 0, 10.0, 0, -0.01, 45.0), atol=1e-9)


def test_south_up_lat_lon_cube_without_crs_is_also_read_north_up(tmp_path):
    """Placed in a CRS, the ascending-lat store is read north-up like any other (row 0: the northernmost)."""
    import xarray as xr

    ys = 44.8 + 0.01 * (np.arange(20) + 0.5)  # ascending: south-up
    xs = 10.0 + 0.01 * (np.arange(30) + 0.5)
    data = np.arange(20 * 30, dtype="uint16").reshape(1, 20, 30)
    da = xr.DataArray(data, dims=("band", "lat", "lon"), coords={"lat": ys, "lon": xs})
    write_zarr3(da.to_dataset(name="v"), tmp_path / "s.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = open_cube(str(tmp_path / "s.zarr"))
    np.testing.assert_allclose(sc.transform, (0.01, 0, 10.0, 0, -0.01, 45.0), atol=1e-9)
    np.testing.assert_array_equal(np.asarray(sc.array.values)[0], data[0, ::-1])


def test_xy_cube_without_crs_stays_refused(tmp_path):
    store = _store(tmp_path / "xy.zarr", "y", "x")
    with pytest.raises(InputError, match=r"xy\.zarr has no CRS"):
        open_cube(store)


def test_lat_lon_names_over_metre_values_stay_refused(tmp_path):
    """Names alone are not enough: a projected grid in metres mislabelled lat/lon is not placed in degrees."""
    store = _store(tmp_path / "m.zarr", y0=5_000_000.0, x0=500_000.0, step=10.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"m\.zarr has no CRS"):
            open_cube(store)
    assert not [w for w in caught if "EPSG:4326" in str(w.message)]
