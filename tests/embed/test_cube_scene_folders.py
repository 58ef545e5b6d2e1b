"""`geodino embed` of many scenes takes datacubes as it takes rasters: a folder or glob of Zarr stores and NetCDF
files, or several stores named. Before, only a .txt list of them worked: a folder of cubes was refused as holding
"no raster files", and a Zarr store named beside another was searched as a folder of rasters."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.embed.scenes import list_scenes
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"
RUN = ["--tile", "32", "--overlap", "0", "--no-progress", "--threads", "1", "--scale", "1e-4"]


def _cube(path: Path, north: float) -> Path:
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = {"y": north - 10 * (np.arange(32) + 0.5), "x": 5e5 + 10 * (np.arange(32) + 0.5)}
    da = xr.DataArray(random_image(32, 32, c=3, seed=int(north) % 7, dtype="uint16").astype("int16") // 4,
                      dims=("band", "y", "x"), coords=grid, name="r")  # fmt: skip
    ds = da.rio.write_crs("EPSG:32633").to_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, zarr_format=2) if path.suffix == ".zarr" else ds.to_netcdf(path)
    return path


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    _cube(d / "a.zarr", 4e6)
    _cube(d / "sub" / "b.nc", 4e6 - 320)
    return d


def test_a_folder_of_cubes_lists_its_stores(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    write_tif(d / "c.tif", random_image(32, 32))
    assert [s.path for s in list_scenes([str(d)])] == [str(d / "c.tif"), str(d / "a.zarr"), str(d / "sub" / "b.nc")]
    assert [s.path for s in list_scenes([str(d / "*.zarr")])] == [str(d / "a.zarr")]
    named = [str(d / "a.zarr"), str(d / "sub" / "b.nc")]
    assert [s.path for s in list_scenes(named)] == named  # a.zarr was searched for rasters: refused


def test_embed_a_folder_of_cubes(tmp_path: Path) -> None:
    d = tmp_path / "in"
    _cube(d / "a.zarr", 4e6), _cube(d / "sub" / "b.zarr", 4e6 - 320)  # (scene headers are read by GDAL: Zarr)
    assert cli.main(["embed", str(d), "-b", SPEC, "--out", str(tmp_path / "out"), *RUN]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == ["a.tif", "b.tif"]
    assert (tmp_path / "out" / "mosaic.vrt").exists()


def test_a_folder_of_neither_names_both_kinds(tmp_path: Path) -> None:
    (tmp_path / "empty" / "x").mkdir(parents=True)
    with pytest.raises(InputError, match=r"holds no raster files .*Zarr stores and NetCDF files"):
        list_scenes([str(tmp_path / "empty")])
