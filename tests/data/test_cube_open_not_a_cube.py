"""A file given as a datacube that is neither NetCDF nor Zarr (a GeoTIFF under `--type cube` / `type: cube`, a
stray file named .nc) is one line saying so, and a TIFF is pointed at `type: raster`. It was the Zarr reader's
'cannot be opened (GroupNotFoundError: No group found in store ...)' or xarray's engine list with two links."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.cubes import open_cube
from geodino.errors import InputError


def _tiff(path):
    import rasterio
    from rasterio.transform import from_origin

    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint16", "crs": "EPSG:32633"}
    with rasterio.open(path, "w", transform=from_origin(500000, 4500000, 10, 10), **profile) as ds:
        ds.write(np.ones((1, 8, 8), np.uint16))
    return path


@pytest.mark.parametrize("name", ["scene.tif", "scene.nc"])
def test_a_tiff_given_as_a_cube_is_pointed_at_the_raster_type(tmp_path, name):
    path = _tiff(tmp_path / name)
    with pytest.raises(InputError) as err:
        open_cube(str(path))
    msg = str(err.value)
    assert "\n" not in msg and "GroupNotFoundError" not in msg and "xarray's" not in msg
    assert msg.startswith(f"datacube {path} is neither a NetCDF file") and "it is a TIFF: read it as a raster" in msg


def test_another_file_is_named_neither_netcdf_nor_zarr(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("not a datacube")
    with pytest.raises(
        InputError, match=r"notes\.nc is neither a NetCDF file .* nor a Zarr store \(a folder\); give a"
    ):
        open_cube(str(path))


def test_a_missing_store_still_says_it_cannot_be_opened(tmp_path):
    with pytest.raises(InputError, match=r"missing\.zarr cannot be opened \(FileNotFoundError"):
        open_cube(str(tmp_path / "missing.zarr"))
