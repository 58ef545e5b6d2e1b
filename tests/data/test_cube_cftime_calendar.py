"""Datacubes whose time axis is in a non-standard CF calendar (noleap, 360_day: climate-model cubes), which xarray
decodes to cftime dates. Without cftime such a store was 'cannot be opened (ValueError ...); give a Zarr/NetCDF
store'; with it, an axis stored out of order kept its order (`in_time_order` skipped object arrays), so
time_sampling first read the latest date."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from geodino.data.cube_grid import in_time_order
from geodino.data.cubes import CubeSource, open_cube
from geodino.data.sensors import Sensor
from geodino.errors import InputError

S2 = Sensor("s2", ("B04", "B08"), 1e-4, (0.1,) * 2, (0.05,) * 2, False)
DAYS = [424, 58, 59]  # days since 2000-01-01, noleap: 2001-03-01, 2000-02-28, 2000-03-01 (standard: 02-29 for 59)
NOLEAP = ["2000-02-28", "2000-03-01", "2001-03-01"]


def _dataset():
    """A (time, band, y, x) uint16 cube with its noleap time axis as raw numbers (units, calendar attributes), rows
    of date k valued 1000 + its day number, out of time order."""
    import rioxarray  # noqa: F401
    import xarray as xr

    data = np.stack([np.full((2, 20, 30), 1000 + d, "uint16") for d in DAYS])
    time = ("time", np.asarray(DAYS, "f8"), {"units": "days since 2000-01-01", "calendar": "noleap"})
    ys, xs = 4650000 - 10 * (np.arange(20) + 0.5), 500000 + 10 * (np.arange(30) + 0.5)
    ds = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), data)},
        coords={"time": time, "band": ["B04", "B08"], "y": ys, "x": xs},
    )
    return ds.rio.write_crs("EPSG:32633")


def _netcdf3(path) -> str:
    _dataset().to_netcdf(path, engine="scipy")  # written undecoded: no cftime needed
    return str(path)


def _zarr(path) -> str:
    _dataset().to_zarr(path, zarr_format=2)
    return str(path)


@pytest.fixture
def no_cftime(monkeypatch):
    """As where cftime is not installed (CI), hence not netCDF4 either (it requires cftime); xarray's cached list of
    usable engines is refreshed on entry and exit, so no other test sees netCDF4 missing."""
    from xarray.backends import plugins
    from xarray.namedarray.utils import module_available

    def refresh() -> None:  # xarray caches which modules and engines are there
        module_available.cache_clear()
        plugins.refresh_engines()

    monkeypatch.setitem(sys.modules, "cftime", None)
    monkeypatch.setitem(sys.modules, "netCDF4", None)
    refresh()
    yield
    monkeypatch.undo()
    refresh()


@pytest.mark.parametrize("write", [_netcdf3, _zarr])
def test_without_cftime_the_calendar_and_the_install_are_said_in_one_line(tmp_path, no_cftime, write):
    store = write(tmp_path / ("c.nc" if write is _netcdf3 else "c.zarr"))
    with pytest.raises(InputError) as err:
        open_cube(store)
    text = str(err.value)
    assert "\n" not in text and store in text
    assert "'noleap' calendar" in text and "pip install cftime" in text
    assert "give a Zarr/NetCDF store" not in text


class _Date:
    """A cftime-like date (what xarray decodes a noleap axis to): ordered, with a `calendar`."""

    calendar = "noleap"

    def __init__(self, y: int, m: int, d: int) -> None:
        self.key = (y, m, d)

    def __lt__(self, other: _Date) -> bool:
        return self.key < other.key

    def __gt__(self, other: _Date) -> bool:
        return self.key > other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Date) and self.key == other.key

    __hash__ = None  # type: ignore[assignment]


def test_dates_of_another_calendar_are_put_in_time_order():
    import xarray as xr

    dates = np.empty(3, dtype=object)
    dates[:] = [_Date(2001, 3, 1), _Date(2000, 2, 28), _Date(2000, 3, 1)]
    da = xr.DataArray(np.arange(3), dims=("time",), coords={"time": dates})
    out = in_time_order(da, "time")
    assert [v.key for v in out["time"].values] == [(2000, 2, 28), (2000, 3, 1), (2001, 3, 1)]
    assert out.values.tolist() == [1, 2, 0]
    text = xr.DataArray(np.arange(2), dims=("time",), coords={"time": ["b", "a"]})  # labels: left as stored
    assert in_time_order(text, "time")["time"].values.tolist() == ["b", "a"]


def _check_noleap(store: str) -> None:
    sc = open_cube(store)
    assert [t[:10] for t in sc.times] == NOLEAP  # noleap: day 59 is 1 March, in time order
    steps = [int(np.asarray(sc.array.isel(time=k).values)[0, 0, 0]) for k in range(3)]
    assert steps == [1058, 1059, 1424]
    first = CubeSource(store, sensor=S2, tile_size=8, time_sampling="first").get(0, 0)
    last = CubeSource(store, sensor=S2, tile_size=8, time_sampling="last").get(0, 0)
    assert first["time"][:10] == "2000-02-28" and np.allclose(first["image"], 0.1058)
    assert last["time"][:10] == "2001-03-01" and np.allclose(last["image"], 0.1424)


def test_a_noleap_netcdf3_cube_reads_its_dates_in_order(tmp_path):
    pytest.importorskip("cftime")  # decoding a noleap axis needs it (optional: the one-line refusal above)
    _check_noleap(_netcdf3(tmp_path / "c.nc"))


def test_a_noleap_netcdf4_cube_reads_its_dates_in_order(tmp_path):
    """NetCDF4 (HDF5), written by netCDF4-python as a climate model writes it (geodino[netcdf])."""
    pytest.importorskip("cftime")
    netCDF4 = pytest.importorskip("netCDF4")
    from pyproj import CRS

    path = str(tmp_path / "c4.nc")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for dim, n in (("time", 3), ("band", 2), ("y", 20), ("x", 30)):
            nc.createDimension(dim, n)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2000-01-01", "noleap"
        t[:] = DAYS
        b = nc.createVariable("band", str, ("band",))
        b[0], b[1] = "B04", "B08"
        nc.createVariable("y", "f8", ("y",))[:] = 4650000 - 10 * (np.arange(20) + 0.5)
        nc.createVariable("x", "f8", ("x",))[:] = 500000 + 10 * (np.arange(30) + 0.5)
        crs = nc.createVariable("spatial_ref", "i4")
        crs.crs_wkt = CRS.from_epsg(32633).to_wkt()
        v = nc.createVariable("reflectance", "u2", ("time", "band", "y", "x"), fill_value=0)
        v.grid_mapping = "spatial_ref"
        v[:] = np.stack([np.full((2, 20, 30), 1000 + d, "uint16") for d in DAYS])
    _check_noleap(path)
