"""`tilelist.check_cube_grid` matches a store to its grid record by resolved path, and by file name only when one
record has that name: a list recording a/x.zarr and b/x.zarr, read where neither path exists, used to check every
store against the last namesake's affine (a's store refused against b's record though unchanged)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from geodino.data.curate.tilelist import check_cube_grid
from geodino.errors import InputError

A = [10.0, 0.0, 500_000.0, 0.0, -10.0, 4_650_000.0]
B = [10.0, 0.0, 600_000.0, 0.0, -10.0, 4_650_000.0]


def _scene(path: str, transform: list[float]) -> SimpleNamespace:
    return SimpleNamespace(path=path, transform=transform, mirrored=())


def test_two_records_of_one_name_and_no_path_match_are_refused_naming_both(tmp_path):
    grid = {"north_up": True, "list": "cut.parquet", "transforms": {"/old/a/x.zarr": A, "/old/b/x.zarr": B}}
    with pytest.raises(InputError, match=r"records 2 datacubes named x\.zarr .*/old/a/x\.zarr.*/old/b/x\.zarr"):
        check_cube_grid(grid, [_scene(str(tmp_path / "a" / "x.zarr"), A)], "cut.parquet")


def test_a_moved_store_with_one_namesake_record_is_still_checked_by_name(tmp_path):
    grid = {"north_up": True, "list": "cut.parquet", "transforms": {"/old/a/x.zarr": A}}
    check_cube_grid(grid, [_scene(str(tmp_path / "x.zarr"), A)], "cut.parquet")  # same affine: read
    with pytest.raises(InputError, match=r"was cut on datacube .* with affine"):
        check_cube_grid(grid, [_scene(str(tmp_path / "x.zarr"), B)], "cut.parquet")


def test_the_exact_path_wins_over_a_namesake(tmp_path):
    here = tmp_path / "b" / "x.zarr"
    grid = {"north_up": True, "list": "cut.parquet", "transforms": {"/old/a/x.zarr": A, str(here.resolve()): B}}
    check_cube_grid(grid, [_scene(str(here), B)], "cut.parquet")
