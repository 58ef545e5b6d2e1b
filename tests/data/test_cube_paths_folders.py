"""A cube source's `paths` may name a folder, a glob or a `.txt` list, as the CLI help ("folders, globs, files or
.txt lists") and raster sources allow: each was opened as one store ('datacube DIR cannot be opened
(GroupNotFoundError ...)', 'datacube DIR/*.nc cannot be opened (FileNotFoundError ...)'). The stores are now the
folder's Zarr stores (not searched inside) and NetCDF files (by suffix or first bytes), recursively."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.data.cubes import CubeSource
from geodino.errors import InputError
from tests.data.conftest import band_cube
from tests.helpers import write_zarr3


def _cube(value: int):
    return band_cube(np.full((3, 16, 16), value, "uint16"))


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "cubes"
    (root / "sub").mkdir(parents=True)
    write_zarr3(_cube(1000), root / "sub" / "a.zarr")
    _cube(2000).to_netcdf(root / "b.nc", engine="scipy")
    _cube(3000).to_netcdf(root / "c_scene", engine="scipy")  # NetCDF3 without a suffix: told by its bytes
    (root / "README.md").write_text("not a cube")
    return root


def test_a_folder_gives_its_stores(folder):
    want = [str(folder / "b.nc"), str(folder / "c_scene"), str(folder / "sub" / "a.zarr")]
    src = CubeSource([str(folder)], sensor="sentinel2_l2a", tile_size=16)  # sorted; a Zarr store is not searched
    assert [s.path for s in src.scenes] == want
    means = [round(float(src.read(i, 0, 0, 16, 16, None)["image"].mean()), 4) for i in range(3)]
    assert means == [0.2, 0.3, 0.1]  # b.nc 2000 DN, c_scene 3000, sub/a.zarr 1000


def test_a_glob_and_a_list(folder, tmp_path):
    from geodino.data.cube_open import cube_paths

    assert cube_paths(str(folder / "*.nc")) == [str(folder / "b.nc")]
    listed = tmp_path / "stores.txt"
    listed.write_text("cubes/sub/a.zarr\ncubes/b.nc\n")
    assert cube_paths([str(listed), str(folder / "b.nc")]) == [str(folder / "sub" / "a.zarr"), str(folder / "b.nc")]
    assert cube_paths(str(folder / "sub" / "a.zarr")) == [str(folder / "sub" / "a.zarr")]  # a store as given


def test_a_folder_or_glob_without_a_store_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"^folder .*empty is not a Zarr store and holds no datacube"):
        CubeSource([str(empty)], sensor="sentinel2_l2a", tile_size=16)
    with pytest.raises(InputError, match=r"^glob '.*\*\.nc' matched no datacube"):
        CubeSource([str(empty / "*.nc")], sensor="sentinel2_l2a", tile_size=16)


def test_a_folder_leaves_out_geodinos_temporaries(folder):
    # a store a geodino run is still writing, or one a killed run left (`.NAME.tmp-TAG-PID.zarr`), is no input
    from geodino.data.cube_open import cube_paths
    from geodino.io_temps import temp_name

    write_zarr3(_cube(4000), temp_name(folder / "d.zarr"))
    _cube(5000).to_netcdf(temp_name(folder / "e.nc"), engine="scipy")
    assert cube_paths(str(folder)) == [str(folder / "b.nc"), str(folder / "c_scene"), str(folder / "sub" / "a.zarr")]
