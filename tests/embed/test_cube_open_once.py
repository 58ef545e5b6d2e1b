"""`geodino embed` on a datacube opens the store once: choosing which per-band variables to stack
(`cube_bands.stacked_variables`) and reading them (`cubes.open_cube`) opened it twice, each open reading the store's
metadata again (on a remote Zarr, requests). `cube_bands.open_embed_cube` passes the opened Dataset on, and the
helpers it uses are public in their home modules (`cube_open.open_dataset`, `cube_variables.shown`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

NAMES = ("B08", "B02", "B04", "B03")  # written in no sensor's order


def _dataset() -> Any:
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = {"y": 4e6 - 10 * (np.arange(16) + 0.5), "x": 5e5 + 10 * (np.arange(16) + 0.5)}
    rng = np.random.default_rng(0)
    ds = xr.Dataset({b: (("y", "x"), rng.integers(0, 10000, (16, 16)).astype("uint16")) for b in NAMES}, coords=grid)
    return ds.rio.write_crs("EPSG:32633")


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every xarray open (Zarr or NetCDF) from now on, by path."""
    import xarray as xr

    opened: list[str] = []
    for fn in ("open_zarr", "open_dataset"):
        real = getattr(xr, fn)

        def counting(path: Any, *args: Any, _real: Any = real, **kw: Any) -> Any:
            opened.append(str(path))
            return _real(path, *args, **kw)

        monkeypatch.setattr(xr, fn, counting)
    return opened


@pytest.mark.parametrize("kind", ["zarr", "nc"])
def test_a_cube_embed_set_up_opens_the_store_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    from geodino.data.cubes import open_cube
    from geodino.data.sensors import get_sensor
    from geodino.embed.cube_bands import open_embed_cube, stacked_variables

    path = tmp_path / f"c.{kind}"
    ds = _dataset()
    ds.to_zarr(path, zarr_format=2) if kind == "zarr" else ds.to_netcdf(path)
    opened = _counted(monkeypatch)
    for sensor, listing in ((get_sensor("sentinel2_l2a"), False), (None, True)):
        opened.clear()
        scene = open_embed_cube(str(path), str(path), variable=None, sensor=sensor, listing=listing, nodata=None)
        assert opened == [str(path)]
        # the same scene as choosing and reading with two opens (as before)
        stack = stacked_variables(str(path), str(path), variable=None, sensor=sensor, listing=listing)
        before = open_cube(str(path), bands=stack, require_crs=False)
        assert scene.path == before.path == str(path) and scene.band_names == before.band_names
        assert scene.crs == before.crs and scene.transform == before.transform and scene.nodata == before.nodata
        np.testing.assert_array_equal(scene.array.values, before.array.values)
    # listing: the store's order (a Zarr store lists its variables alphabetically, a NetCDF file as written)
    assert scene.band_names == (("B02", "B03", "B04", "B08") if kind == "zarr" else NAMES)


def test_one_variable_and_in_memory_cubes_open_nothing_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geodino.embed.cube_bands import open_embed_cube

    path = tmp_path / "c.zarr"
    ds = _dataset()
    ds.to_zarr(path, zarr_format=2)
    opened = _counted(monkeypatch)
    scene = open_embed_cube(str(path), str(path), variable="B04", sensor=None, listing=False, nodata=None)
    assert opened == [str(path)] and scene.band_names == ("b1",) and scene.path == str(path)
    np.testing.assert_array_equal(scene.array.values[0], ds["B04"].values)
    opened.clear()
    mem = open_embed_cube(ds, "Dataset", variable=None, sensor=None, listing=True, nodata=None)
    assert opened == [] and mem.path == "Dataset" and mem.band_names == NAMES


def test_the_helpers_are_public_and_the_old_name_still_works() -> None:
    from geodino.data import cube_open, cube_variables, cubes

    assert "open_dataset" in cube_open.__all__ and "shown" in cube_variables.__all__
    assert cubes._open_dataset is cube_open.open_dataset  # geodino.data.stats_cube imports it from cubes
    assert cube_variables.shown([f"v{i}" for i in range(10)], 2) == "v0, v1, ... (10 in all)"


def test_the_embed_source_opens_the_store_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geodino.embed.sources import CubeSource

    path = tmp_path / "c.zarr"
    _dataset().to_zarr(path, zarr_format=2)
    opened = _counted(monkeypatch)
    src = CubeSource(str(path), sensor="sentinel2_l2a")
    assert src.info.descriptions == ("B02", "B03", "B04", "B08")
    assert opened == [str(path)]
