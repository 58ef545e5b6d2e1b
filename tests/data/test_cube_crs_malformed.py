"""Malformed CRS declarations in datacubes (`cube_grid.cube_crs`). rioxarray's grid-mapping parse raises pyproj's
CRSError (WKT or EPSG code PROJ cannot read) or ValueError (CF parameters that are not numbers), found by trying
malformed attributes; those fall through to the other CRS attributes, other errors propagate (a broad `except
Exception` swallowed bugs too). A malformed grid mapping WKT crashed the fallback itself with rasterio's bare
'The WKT could not be parsed' (no store named), even beside a valid `proj:epsg`."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.crs
import xarray as xr

from geodino.data.cubes import open_cube
from geodino.errors import InputError


def _ds(gm_attrs=None, **attrs) -> xr.Dataset:
    """A 4x4 uint16 variable `v` on a 10 m grid, its grid mapping `spatial_ref` holding `gm_attrs`."""
    import rioxarray  # noqa: F401

    coords = {"y": 5_000_035.0 - np.arange(4) * 10.0, "x": 300_005.0 + np.arange(4) * 10.0}
    ds = xr.Dataset({"v": (("y", "x"), np.ones((4, 4), np.uint16))}, coords=coords)
    if gm_attrs is not None:
        ds = ds.assign_coords(spatial_ref=xr.DataArray(0, attrs=gm_attrs))
        ds["v"].attrs["grid_mapping"] = "spatial_ref"
    ds.attrs.update(attrs)
    return ds


def test_a_malformed_grid_mapping_falls_back_to_proj_epsg():
    scene = open_cube(_ds({"crs_wkt": "garbage"}, **{"proj:epsg": 32633}), warn_unplaced=False)
    assert rasterio.crs.CRS.from_wkt(scene.crs) == rasterio.crs.CRS.from_epsg(32633)


def test_cf_parameters_that_are_not_numbers_fall_back_to_the_crs_attribute():
    gm = {"grid_mapping_name": "albers_conical_equal_area", "standard_parallel": "x"}  # ValueError in pyproj.from_cf
    scene = open_cube(_ds(gm, crs="EPSG:32633"), warn_unplaced=False)
    assert rasterio.crs.CRS.from_wkt(scene.crs) == rasterio.crs.CRS.from_epsg(32633)


def test_only_malformed_declarations_are_refused_in_one_line(tmp_path):
    path = tmp_path / "bad.zarr"
    _ds({"crs_wkt": "garbage"}).to_zarr(path, zarr_format=2)
    with pytest.raises(InputError) as err:
        open_cube(str(path))
    msg = str(err.value)
    assert "\n" not in msg
    assert f"datacube {path} declares no CRS" in msg and "crs_wkt 'garbage'" in msg


def test_other_errors_of_the_grid_mapping_parse_propagate(monkeypatch):
    """A bug in the parse (here a KeyError) is not taken for 'no CRS in the grid mapping'."""
    from rioxarray.rioxarray import XRasterBase

    def broken(self):
        raise KeyError("a bug")

    monkeypatch.setattr(XRasterBase, "crs", property(broken))
    with pytest.raises(KeyError, match="a bug"):
        open_cube(_ds(crs="EPSG:32633"), warn_unplaced=False)
