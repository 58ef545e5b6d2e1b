"""Cube tile lists and the grid they were cut on: since datacubes are read north-up (a south-up store is mirrored on
read), a list written before that names mirrored rows. A list's `geodino:grid` record (`tilelist.cube_grid_record`:
`north_up` and each store's affine as read) is compared with the stores as now read: a list recording another
affine, or no north-up marker, is refused in one line; a list with no record (older geodino) is read with one
warning, only when a store it reads is actually south-up/east-west."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.data.curate.report import write_table
from geodino.data.curate.tilelist import GRID_KEY, cube_grid_record
from geodino.data.loaders import SourceConfig, build_source
from geodino.errors import InputError
from tests.helpers import write_zarr3


def _store(path, south_up: bool) -> str:
    """A (band, y, x) uint16 store of 32 x 32 cells of 10 m in EPSG:32633, y ascending when `south_up`."""
    import rioxarray  # noqa: F401
    import xarray as xr

    ys = 4_650_000.0 - 10.0 * (np.arange(32) + 0.5)
    xs = 500_000.0 + 10.0 * (np.arange(32) + 0.5)
    data = np.random.default_rng(0).integers(1, 4000, (3, 32, 32)).astype("uint16")
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["B02", "B03", "B04"], "y": ys, "x": xs})
    if south_up:
        da = da.isel(y=slice(None, None, -1))
    write_zarr3(da.rio.write_crs("EPSG:32633").to_dataset(name="reflectance"), path)
    return str(path)


def _list(tmp_path, store: str, grid: dict | None) -> str:
    table = {"path": np.array([store, store]), "col": np.array([0, 16]), "row": np.array([0, 16]),
             "width": np.array([16, 16]), "height": np.array([16, 16]), "time": np.array([-1, -1])}  # fmt: skip
    out = tmp_path / "curated.parquet"
    write_table(table, out, None, grid)
    return str(out)


def _source(paths):
    cfg = SourceConfig(type="cube", paths=[paths], sensor="sentinel2_l2a", bands=["B02", "B03", "B04"], tile_size=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = build_source(cfg)
    return src, [str(w.message) for w in caught if "tile list" in str(w.message)]


def test_a_list_without_record_of_a_south_up_store_is_read_with_one_warning(tmp_path):
    store = _store(tmp_path / "s.zarr", south_up=True)
    src, said = _source(_list(tmp_path, store, None))
    assert len(said) == 1 and "curated.parquet" in said[0] and "s.zarr" in said[0] and "south-up" in said[0]
    assert "geodino data curate" in said[0] and len(src) == 2


def test_a_list_without_record_of_a_north_up_store_is_read_silently(tmp_path):
    store = _store(tmp_path / "n.zarr", south_up=False)
    src, said = _source(_list(tmp_path, store, None))
    assert said == [] and len(src) == 2


def test_a_list_recording_the_grid_as_read_is_read_silently(tmp_path):
    store = _store(tmp_path / "s.zarr", south_up=True)
    first, _ = _source(store)
    record = cube_grid_record(first)
    assert record["north_up"] is True
    np.testing.assert_allclose(record["transforms"][str((tmp_path / "s.zarr").resolve())],
                               [10, 0, 500000, 0, -10, 4650000])  # fmt: skip
    path = _list(tmp_path, store, record)
    import json

    import pyarrow.parquet as pq

    assert json.loads(pq.read_schema(path).metadata[GRID_KEY.encode()])["north_up"] is True
    src, said = _source(path)
    assert said == [] and len(src) == 2


def test_a_list_recording_another_affine_is_refused(tmp_path):
    """The affine of the store as stored (south-up: positive pixel height, origin at the south edge)."""
    store = _store(tmp_path / "s.zarr", south_up=True)
    record = {"north_up": True, "transforms": {str((tmp_path / "s.zarr").resolve()): [10, 0, 5e5, 0, 10, 4649680]}}
    said = r"curated\.parquet was cut on datacube .*s\.zarr with affine \(10, 0, 500000, 0, 10, 4\.64968e\+06\) "
    with pytest.raises(InputError, match=said + r"but it is read now with \(10, 0, 500000, 0, -10, 4\.65e\+06\)"):
        _source(_list(tmp_path, store, record))


def test_a_list_recording_no_north_up_marker_is_refused(tmp_path):
    store = _store(tmp_path / "s.zarr", south_up=True)
    with pytest.raises(InputError, match=r"curated\.parquet .*not north-up.*re-run `geodino data curate`"):
        _source(_list(tmp_path, store, {"transforms": {}}))
