"""Datacube time dims not named `time`: openEO's `t`, `Time`, or any dim with a datetime64 coordinate. A (t, y, x)
cube had its dates read as bands b1..bN, silently (a lone unknown dim was taken as the band dim), and a (t, bands,
y, x) openEO cube was refused ('cannot tell what dims ['t'] are')."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from geodino.data.cubes import CubeSource, open_cube
from geodino.data.sensors import Sensor

DATES = np.array(["2024-03-01", "2024-01-01", "2024-02-01"], dtype="datetime64[ns]")  # stored out of order


def _cube(dims=("t", "y", "x"), name="t", dated=True) -> xr.Dataset:
    import rioxarray  # noqa: F401

    shape = {"t": 3, "bands": 2, "y": 8, "x": 8}
    dims = tuple(name if d == "t" else d for d in dims)
    data = np.zeros([shape["t" if d == name else d] for d in dims], np.float32)
    for k in range(3):  # date k holds the value of its month
        idx = tuple(k if d == name else slice(None) for d in dims)
        data[idx] = float(DATES[k].astype("datetime64[M]").astype(int) % 12 + 1)
    coords = {"y": 5_000_000.0 - (np.arange(8) + 0.5) * 10, "x": 300_000.0 + (np.arange(8) + 0.5) * 10}
    coords[name] = DATES if dated else np.arange(3)
    if "bands" in dims:
        coords["bands"] = ["B04", "B08"]
    return xr.DataArray(data, dims=dims, coords=coords, name="v").rio.write_crs("EPSG:32633").to_dataset()


@pytest.mark.parametrize("name", ["t", "Time", "acquired"])
def test_a_dated_dim_is_time_not_bands(name):
    scene = open_cube(_cube(name=name))
    assert scene.band_names == ("b1",)
    assert scene.time_dim == name and [t[:10] for t in scene.times] == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_an_undated_t_dim_is_time_by_its_name():
    scene = open_cube(_cube(dated=False))
    assert scene.band_names == ("b1",) and scene.time_dim == "t"


def test_an_openeo_cube_of_t_and_bands_reads(tmp_path):
    scene = open_cube(_cube(dims=("t", "bands", "y", "x")))
    assert scene.band_names == ("B04", "B08") and scene.time_dim == "t"
    sensor = Sensor("x", ("B04", "B08"), 1.0, (0.0, 0.0), (1.0, 1.0), False)
    _cube(dims=("t", "bands", "y", "x")).to_zarr(tmp_path / "c.zarr", zarr_format=2)
    src = CubeSource(str(tmp_path / "c.zarr"), sensor=sensor, tile_size=8, time_sampling="first")
    np.testing.assert_array_equal(src.read(0, 0, 0, 8, 8, 0)["image"], 1.0)  # time 0: January, the earliest


def test_band_dim_naming_the_dated_dim_keeps_it_as_bands():
    assert open_cube(_cube(), band_dim="t").band_names == ("b1", "b2", "b3")
