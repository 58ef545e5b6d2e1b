"""NetCDF CDF-5 (64-bit data, magic `CDF\\x05`) is read by the netCDF4 package only: xarray's scipy reader took a
CDF-5 file for classic NetCDF and failed with `IndexError: list index out of range`, or read a `CDF\\x05` header of
zeros as an empty Dataset. Without netCDF4 such a file is now refused in one line naming the install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from geodino.data import cube_open
from geodino.data.cube_open import is_cube_store, open_dataset
from geodino.errors import InputError


def _no_netcdf4(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "netCDF4" else real(name, *a))


@pytest.mark.parametrize("name", ["x.nc", "x"])
def test_a_cdf5_file_without_netcdf4_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"CDF\x05" + bytes(60))  # the magic, then zeros (numrecs 0, no dims, attributes or variables)
    assert cube_open._netcdf_kind(path) == "cdf5" and is_cube_store(path)
    _no_netcdf4(monkeypatch)
    with pytest.raises(InputError) as exc:
        open_dataset(str(path))
    assert str(exc.value) == (
        f"datacube {path} is a NetCDF CDF-5 (64-bit data) file, which only the netCDF4 package reads (xarray's scipy "
        "reader misreads it): pip install 'geodino[netcdf]' (or pip install netCDF4)"
    )


def test_classic_and_64_bit_offset_files_are_still_classic(tmp_path: Path) -> None:
    for magic in (b"CDF\x01", b"CDF\x02"):
        (tmp_path / "c").write_bytes(magic + bytes(60))
        assert cube_open._netcdf_kind(tmp_path / "c") == "classic"
