"""A GDAL subdataset path of a NetCDF variable (`NETCDF:"f.nc":var`) was refused as an input that "does not exist",
and `HDF5:"f.nc"://var` was taken for a URL (its `://`) and read by GDAL's HDF5 driver without the store's CRS
("has no CRS; set one (gdal_edit.py ...)" on a path gdal_edit cannot write). Both are refused in one line naming
the file and `--variable`, which embeds that variable with its CRS."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from geodino import cli
from geodino.embed import embed_raster
from tests.embed.conftest import random_image

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


@pytest.fixture
def two_vars(tmp_path):
    """A NetCDF of two 3-band float variables `a` and `b` (16 x 24 px, 10 m, EPSG:32633 as a CF grid mapping)."""
    import xarray as xr

    ys, xs = 4000000 - 10 * (np.arange(16) + 0.5), 500000 + 10 * (np.arange(24) + 0.5)
    wkt = CRS.from_epsg(32633).to_wkt()
    ds = xr.Dataset(
        {v: (("band", "y", "x"), random_image(16, 24, seed=i, dtype="float32")) for i, v in enumerate("ab")},
        coords={"y": ys, "x": xs, "band": [1, 2, 3]},
    )
    ds["spatial_ref"] = xr.DataArray(0, attrs={"crs_wkt": wkt, "spatial_ref": wkt})
    for v in "ab":
        ds[v].attrs["grid_mapping"] = "spatial_ref"
    ds.to_netcdf(tmp_path / "two.nc")
    return tmp_path / "two.nc"


@pytest.mark.parametrize("form", ['NETCDF:"{}":b', 'HDF5:"{}"://b', "NETCDF:{}:b"])
def test_a_subdataset_path_is_refused_naming_the_file_and_variable(tmp_path, capsys, two_vars, form):
    path = form.format(two_vars)
    assert cli.main(["embed", path, "-b", SPEC, "--out", str(tmp_path / "f.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"geodino: error: input {path} is a GDAL subdataset path; pass the file and its variable instead: "
        f"{two_vars} --variable b (variable='b' in Python)"
    ]
    assert not (tmp_path / "f.tif").exists()


def test_the_file_and_variable_it_names_embed_that_variable_in_place(tmp_path, two_vars, conv_bb):
    out = embed_raster(two_vars, conv_bb, tmp_path / "b.tif", variable="b", tile=32, overlap=0, progress=False)
    with rasterio.open(out) as ds:
        assert ds.crs == CRS.from_epsg(32633) and ds.transform.c == 500000.0 and ds.transform.f == 4000000.0
        assert np.isfinite(ds.read()).all()


def test_a_subdataset_path_to_a_missing_file_says_so(tmp_path, capsys):
    path = f'NETCDF:"{tmp_path / "gone.nc"}":b'
    assert cli.main(["embed", path, "-b", SPEC, "--out", str(tmp_path / "f.tif")]) == 2
    assert f"names {tmp_path / 'gone.nc'}, which does not exist" in capsys.readouterr().err
