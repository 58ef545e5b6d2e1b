"""A datacube's dates are written as ISO dates as short as they are exact, numpy and cftime dates alike: a noleap
cube's dates read "2000-02-28 00:00:00" in sample `time` and embed's date listing, whose hint
`time=2001-03-01 00:00:00` was no one shell argument, and a cftime date in a list printed as
cftime.DatetimeNoLeap(2000, 2, 28, 0, 0, 0, 0, has_year_zero=True)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from geodino.data.cube_times import date_label, date_labels
from geodino.data.cubes import CubeSource, open_cube
from geodino.data.sensors import Sensor
from geodino.errors import InputError

S2 = Sensor("s2", ("B04", "B08"), 1e-4, (0.1,) * 2, (0.05,) * 2, False)


class NoLeap:
    """A stand-in for cftime.DatetimeNoLeap (cftime is optional): its fields, calendar, ordering, strftime and
    isoformat, and cftime's str and repr (what geodino printed)."""

    calendar = "noleap"

    def __init__(self, year, month, day, hour=0, minute=0, second=0, microsecond=0) -> None:
        self.year, self.month, self.day = year, month, day
        self.hour, self.minute, self.second, self.microsecond = hour, minute, second, microsecond

    def _key(self) -> tuple[int, ...]:
        return (self.year, self.month, self.day, self.hour, self.minute, self.second, self.microsecond)

    def __lt__(self, other: NoLeap) -> bool:
        return self._key() < other._key()

    def __gt__(self, other: NoLeap) -> bool:
        return self._key() > other._key()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoLeap) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def strftime(self, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return dt.datetime(2000, self.month, self.day, self.hour, self.minute, self.second).strftime(
            fmt.replace("%Y", f"{self.year:04d}")
        )

    def isoformat(self, sep: str = "T") -> str:
        return self.strftime(f"%Y-%m-%d{sep}%H:%M:%S")

    def __str__(self) -> str:
        return self.isoformat(" ")

    def __repr__(self) -> str:
        return f"cftime.DatetimeNoLeap({', '.join(map(str, self._key()))}, has_year_zero=True)"


def _cube(times: np.ndarray):
    """A (time, band, y, x) uint16 cube in EPSG:32633, date k valued 1000 + k."""
    import rioxarray  # noqa: F401
    import xarray as xr

    data = np.stack([np.full((2, 16, 16), 1000 + k, "uint16") for k in range(len(times))])
    ys, xs = 4650000 - 10 * (np.arange(16) + 0.5), 500000 + 10 * (np.arange(16) + 0.5)
    ds = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), data)},
        coords={"time": times, "band": ["B04", "B08"], "y": ys, "x": xs},
    )
    return ds.rio.write_crs("EPSG:32633")


def _objects(*dates: NoLeap) -> np.ndarray:
    out = np.empty(len(dates), dtype=object)
    out[:] = list(dates)
    return out


def test_dates_are_iso_as_short_as_exact_for_numpy_and_cftime_alike():
    pairs = [
        ("2024-02-01T00:00:00", NoLeap(2024, 2, 1), "2024-02-01"),
        ("2024-02-01T10:00:00", NoLeap(2024, 2, 1, 10), "2024-02-01T10:00"),
        ("2024-02-01T10:32:11", NoLeap(2024, 2, 1, 10, 32, 11), "2024-02-01T10:32:11"),
        ("2024-02-01T10:32:11.5", NoLeap(2024, 2, 1, 10, 32, 11, 500000), "2024-02-01T10:32:11.500"),
        ("2024-02-01T10:32:11.000001", NoLeap(2024, 2, 1, 10, 32, 11, 1), "2024-02-01T10:32:11.000001"),
    ]
    for text, cf, want in pairs:
        assert date_label(np.datetime64(text, "ns")) == want
        assert date_label(cf) == want, repr(cf)
    assert date_label(NoLeap(2000, 2, 30)) == "2000-02-30"  # a 360_day date: no Python date, written as it is
    assert date_label(dt.date(2021, 5, 6)) == "2021-05-06"
    assert date_labels([3, "b", b"c", np.datetime64("NaT", "ns")]) == ["3", "b", "c", "NaT"]  # no dates: as text


def test_a_cube_of_cftime_dates_lists_them_as_iso_dates():
    """Sample `time` and embed's date listing, error hints and chosen label name the dates as numpy's would."""
    from geodino.embed.sources import select_time, time_labels

    ds = _cube(_objects(NoLeap(2001, 3, 1), NoLeap(2000, 2, 28), NoLeap(2000, 3, 1, 12)))
    sc = open_cube(ds, name="c.zarr")
    assert sc.times == ["2000-02-28", "2000-03-01T12:00", "2001-03-01"]  # in time order
    assert time_labels(sc) == sc.times  # sample `time` is sc.times[t] (a stored cftime axis: the last test)
    with pytest.raises(InputError) as err:
        select_time(sc, "c.zarr", None)
    text = str(err.value)
    assert "(2000-02-28, 2000-03-01T12:00, 2001-03-01)" in text and "time=2001-03-01)" in text
    assert "cftime" not in text and "00:00:00" not in text
    array, label = select_time(sc, "c.zarr", "2000-03")
    assert label == "2000-03-01T12:00" and int(array.values[0, 0, 0]) == 1002


def test_a_cftime_axis_of_any_name_is_the_time_dim():
    """A (valid_time, y, x) cube of cftime dates: its dates were read as three bands named after them, as a
    datetime64 axis of that name was before `_time_like`; they are its time steps, as datetime64 ones are."""
    import rioxarray  # noqa: F401
    import xarray as xr

    times = _objects(NoLeap(2000, 3, 1), NoLeap(2000, 1, 1), NoLeap(2001, 3, 1))
    data = np.stack([np.full((16, 16), 1000 + k, "uint16") for k in range(3)])
    ys, xs = 4650000 - 10 * (np.arange(16) + 0.5), 500000 + 10 * (np.arange(16) + 0.5)
    ds = xr.Dataset({"r": (("valid_time", "y", "x"), data)}, coords={"valid_time": times, "y": ys, "x": xs})
    sc = open_cube(ds.rio.write_crs("EPSG:32633"), name="v.zarr")
    assert sc.time_dim == "valid_time" and sc.band_names == ("b1",)
    assert sc.times == ["2000-01-01", "2000-03-01", "2001-03-01"]  # in time order
    assert [int(sc.array.isel(valid_time=k).values[0, 0, 0]) for k in range(3)] == [1001, 1000, 1002]


def test_numpy_dates_in_samples_are_iso_dates(tmp_path):
    """Sample `time` of a datetime64 axis was 2024-01-01T00:00:00.000000000."""
    path = str(tmp_path / "n.zarr")
    _cube(np.array(["2024-03-01", "2024-01-01T06:30"], dtype="datetime64[ns]")).to_zarr(path, zarr_format=2)
    src = CubeSource(path, sensor=S2, tile_size=8, time_sampling="first")
    assert src.scenes[0].times == ["2024-01-01T06:30", "2024-03-01"]
    assert src.get(0, 0)["time"] == "2024-01-01T06:30"


def test_a_real_noleap_store_lists_iso_dates(tmp_path):
    cftime = pytest.importorskip("cftime")
    assert date_label(cftime.DatetimeNoLeap(2000, 1, 1)) == "2000-01-01"
    assert date_label(cftime.Datetime360Day(2000, 2, 30, 6)) == "2000-02-30T06:00"
    times = np.asarray([0.0, 59.0, 424.0])  # noleap days since 2000-01-01: 01-01, 03-01, 2001-03-01
    ds = _cube(times)
    ds["time"].attrs.update(units="days since 2000-01-01", calendar="noleap")
    path = str(tmp_path / "c.nc")
    ds.to_netcdf(path, engine="scipy")
    src = CubeSource(path, sensor=S2, tile_size=8, time_sampling="last")
    assert src.scenes[0].times == ["2000-01-01", "2000-03-01", "2001-03-01"]
    assert src.get(0, 0)["time"] == "2001-03-01" and np.allclose(src.get(0, 0)["image"], 0.1002)
    other = str(tmp_path / "v.nc")  # the axis under another name: still the dates, not bands
    ds.rename(time="valid_time").isel(band=0).to_netcdf(other, engine="scipy")
    sc = open_cube(other)
    assert sc.time_dim == "valid_time" and sc.band_names == ("B04",) and sc.times == src.scenes[0].times
