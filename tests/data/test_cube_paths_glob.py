"""A glob naming Zarr stores (`cubes/*.zarr`, the natural one) is expanded: `cube_paths` took any path ending in
`.zarr` for a store of that name, so `paths: cubes/*.zarr` in a cube source failed at open ("datacube
cubes/*.zarr cannot be opened") and `geodino embed 'cubes/*.zarr'` tried to read a scene of that name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geodino.data.cube_open import cube_paths


def _store(path: Path, north: float) -> Path:
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = {"y": north - 10 * (np.arange(16) + 0.5), "x": 5e5 + 10 * (np.arange(16) + 0.5)}
    dn = np.random.default_rng(0).integers(1, 9000, (4, 16, 16)).astype("uint16")
    da = xr.DataArray(dn, dims=("band", "y", "x"), coords={"band": ["B02", "B03", "B04", "B08"], **grid}, name="r")
    da.rio.write_crs("EPSG:32633").to_dataset().to_zarr(path, zarr_format=2)
    return path


def test_a_glob_of_zarr_stores_is_expanded(tmp_path: Path) -> None:
    a, b = _store(tmp_path / "a.zarr", 4e6), _store(tmp_path / "b.zarr", 4e6 - 160)
    assert cube_paths(str(tmp_path / "*.zarr")) == [str(a), str(b)]  # was ['.../*.zarr']
    assert cube_paths(str(tmp_path / "[b].zarr")) == [str(b)]
    odd = _store(tmp_path / "[b].zarr", 4e6)  # a store whose name looks like a glob is itself
    assert cube_paths(str(odd)) == [str(odd)]


def test_a_cube_source_reads_a_glob_of_stores(tmp_path: Path) -> None:
    from geodino.data.cubes import CubeSource

    _store(tmp_path / "a.zarr", 4e6), _store(tmp_path / "b.zarr", 4e6 - 160)
    src = CubeSource(str(tmp_path / "*.zarr"), sensor="sentinel2_l2a", tile_size=16, sampling="grid")
    assert [Path(s.path).name for s in src.scenes] == ["a.zarr", "b.zarr"] and len(src) == 2
