"""One "is this a datacube?" test for every reader (`cube_open.is_cube_store`): a Zarr store, or a NetCDF file by
its suffix (.nc, .nc4, ...) or its first bytes. Before, `geodino data stats --type cube FOLDER` opened the folder
itself (GroupNotFoundError), `train`'s data kind and the legacy loader's kind="auto" went by suffix only (a
suffix-less NetCDF in a folder was no cube; `.nc4` was a raster or images to the loader), and `embed` took a
suffix-less NetCDF for a raster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.conftest import band_cube
from tests.helpers import write_zarr3


def _cube(value: int):
    data = np.full((3, 16, 16), value, "uint16")
    data[:, :8] += 100  # half the rows 100 DN brighter: a std to check
    return band_cube(data)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "cubes"
    root.mkdir()
    _cube(1000).to_netcdf(root / "b.nc4", engine="scipy")  # NetCDF3 bytes under NetCDF4's suffix
    _cube(3000).to_netcdf(root / "c_scene", engine="scipy")  # NetCDF3 without a suffix: told by its bytes
    return root


def test_the_predicate(folder, tmp_path):
    from geodino.data.cube_open import _is_store, is_cube_store

    (tmp_path / "notes.txt").write_text("CDX not a cube")
    write_zarr3(_cube(1), tmp_path / "a.zarr")
    assert is_cube_store(folder / "c_scene") and is_cube_store(str(folder / "b.nc4"))
    assert is_cube_store(tmp_path / "a.zarr") and is_cube_store("s3://bucket/remote.nc")  # remote: by suffix
    assert not is_cube_store(folder) and not is_cube_store(tmp_path / "notes.txt")
    assert _is_store(folder / "c_scene") and not _is_store(tmp_path / "missing.nc")  # the old name, existing only


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
def test_data_stats_reads_a_folder_of_cubes(folder):
    from geodino.data.stats import compute_stats

    sensor, prov = compute_stats(str(folder), type="cube", tile_size=16, samples=4, progress=False)
    assert sensor.bands == ("B02", "B03", "B04")
    # every pixel of both stores: 1000/1100 and 3000/3100 DN, 256 each -> mean 2050, population std 1001.25 (in DN;
    # uint16 is read by the dtype rule, DN / 10000)
    assert prov["tile_size"] == 16 and list(prov["pixels"]) == [512] * 3
    assert np.allclose(sensor.mean, [0.205] * 3)
    assert np.allclose(sensor.std, [0.100125 * np.sqrt(512 / 511)] * 3, rtol=1e-5)


def test_train_kind_and_legacy_auto(folder):
    from geodino.data.loaders import _legacy_configs
    from geodino.train.api import _cubes

    assert _cubes([str(folder)]) == [str(folder / "b.nc4"), str(folder / "c_scene")]
    for path in ("b.nc4", "c_scene"):
        data, _ = _legacy_configs(str(folder / path), {})
        assert data.sources[0].type == "cube", path


def test_embed_opens_a_suffixless_netcdf_as_a_cube(folder):
    from types import SimpleNamespace

    from geodino.embed.command_flags import check_one_input_flags
    from geodino.embed.sources import CubeSource, open_source

    path = str(folder / "c_scene")
    src = open_source(path)
    assert isinstance(src, CubeSource) and list(src.info.descriptions) == ["B02", "B03", "B04"]
    check_one_input_flags(path, SimpleNamespace(asset=None, asset_bands=None, variable="refl"))  # not refused
