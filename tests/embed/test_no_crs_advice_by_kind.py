"""A Zarr store without a CRS was told to `set one (gdal_edit.py -a_srs EPSG:...)`, which GDAL cannot do to a Zarr
store; a cube is told how rioxarray writes one, and a raster gets the gdal_edit.py command with its own path."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from geodino.embed.prepare import _check_grid
from geodino.errors import InputError
from tests.helpers import write_zarr3


@pytest.mark.parametrize("name", ["scene.tif", "cube.zarr"])
def test_the_way_to_set_a_crs_fits_the_input(tmp_path, name):
    from affine import Affine

    path = tmp_path / name
    if name.endswith(".zarr"):
        import xarray as xr

        write_zarr3(xr.DataArray(np.zeros((1, 4, 4), "uint8"), dims=("band", "y", "x")).to_dataset(name="v"), path)
    else:
        path.write_bytes(b"")  # only its name is read here
    info = SimpleNamespace(crs=None, path=str(path), transform=Affine.identity())
    cfg = SimpleNamespace(allow_no_crs=False, upsample=False, out=None)
    with pytest.raises(InputError) as err:
        _check_grid(info, cfg)
    text = str(err.value)
    how = "with rioxarray: ds.rio.write_crs('EPSG:...'), then save the store again" if name.endswith(".zarr") else (
        f"gdal_edit.py -a_srs EPSG:... {path}")  # fmt: skip
    assert text == f"input {path} has no CRS; set one ({how}) or pass --allow-no-crs (allow_no_crs=True in Python)"
