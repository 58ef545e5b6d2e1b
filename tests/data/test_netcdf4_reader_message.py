"""A NetCDF4 (HDF5) datacube without a reader (h5netcdf, netCDF4: the optional extra `geodino[netcdf]`) is refused
in one line naming the file and `pip install 'geodino[netcdf]'`, also on a machine where a reader is installed: the
readers are hidden here (xarray's engine discovery is cached, so its caches are cleared around the test). A reader
whose import fails gets the same line, and NetCDF files are told by their first bytes, whatever their suffix."""

from __future__ import annotations

import sys

import pytest

from geodino.data.cubes import open_cube
from geodino.errors import InputError

_READERS = ("h5netcdf", "netCDF4", "h5py")


@pytest.fixture
def hidden_readers(monkeypatch):
    """`import h5netcdf` (and netCDF4, h5py) fails, and xarray's engine list is rebuilt without them."""
    from xarray.backends import plugins

    for name in _READERS:
        monkeypatch.setitem(sys.modules, name, None)  # find_spec -> None, import -> ImportError
    plugins.module_available.cache_clear()
    plugins.list_engines.cache_clear()
    yield plugins
    monkeypatch.undo()
    plugins.module_available.cache_clear()
    plugins.list_engines.cache_clear()


def _hdf5(path):
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(504))
    return path


def test_without_a_reader_the_message_names_the_file_and_the_install(tmp_path, hidden_readers):
    path = _hdf5(tmp_path / "s2.nc")
    with pytest.raises(InputError) as err:
        open_cube(str(path))
    msg = str(err.value)
    assert "\n" not in msg
    assert f"datacube {path} is a NetCDF4 (HDF5) file" in msg and "pip install h5netcdf" in msg
    assert "pip install 'geodino[netcdf]'" in msg and "neither is installed" in msg


def test_a_reader_whose_import_fails_gets_the_same_line(tmp_path, hidden_readers, monkeypatch):
    """h5netcdf present (xarray picks its engine) but its import fails (a broken h5py build)."""
    real = hidden_readers.module_available
    monkeypatch.setattr(hidden_readers, "module_available", lambda m, minversion=None: m == "h5netcdf" or real(m))
    hidden_readers.list_engines.cache_clear()
    path = _hdf5(tmp_path / "s2.nc")
    with pytest.raises(InputError, match=r"s2\.nc is a NetCDF4 \(HDF5\) file.*pip install h5netcdf") as err:
        open_cube(str(path))
    msg = str(err.value)
    assert "\n" not in msg and "pip install 'geodino[netcdf]'" in msg
    assert "failed to import (ModuleNotFoundError" in msg and "h5netcdf" in msg


@pytest.mark.parametrize("name", ["s2", "s2.dat", "S2_L2A.cube"])
def test_a_netcdf4_file_without_a_netcdf_suffix_is_told_by_its_bytes(tmp_path, hidden_readers, name):
    """Was 'cannot be opened (GroupNotFoundError ...)': the Zarr reader got every file without a NetCDF suffix."""
    path = _hdf5(tmp_path / name)
    with pytest.raises(InputError) as err:
        open_cube(str(path))
    msg = str(err.value)
    assert "\n" not in msg and "GroupNotFoundError" not in msg
    assert f"datacube {path} is a NetCDF4 (HDF5) file" in msg and "pip install 'geodino[netcdf]'" in msg


def test_a_classic_netcdf_file_without_a_netcdf_suffix_opens(tmp_path):
    """A NetCDF3 file (`CDF`, read by scipy) named without .nc opens as a datacube, bands and grid intact."""
    import numpy as np
    import xarray as xr

    data = np.arange(2 * 4 * 5, dtype="int16").reshape(2, 4, 5)
    ds = xr.Dataset(
        {"data": (("band", "y", "x"), data)},
        coords={"band": ["B04", "B08"], "y": 100.0 - 10 * np.arange(4) - 5, "x": 500.0 + 10 * np.arange(5) + 5},
    )
    ds = ds.rio.write_crs("EPSG:32633")
    path = tmp_path / "cube_t33"
    ds.to_netcdf(path, engine="scipy")
    assert path.read_bytes()[:4] in (b"CDF\x01", b"CDF\x02")  # classic or 64-bit offset
    scene = open_cube(str(path))
    assert scene.band_names == ("B04", "B08") and (scene.width, scene.height) == (5, 4)
    assert scene.transform[:6] == (10.0, 0.0, 500.0, 0.0, -10.0, 100.0)
    assert "UTM zone 33N" in scene.crs and '"32633"' in scene.crs
    np.testing.assert_array_equal(np.asarray(scene.array.values), data)
