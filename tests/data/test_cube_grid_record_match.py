"""Which record of a cube list's grid (`tilelist.cube_grid_record`: store affines keyed by resolved path) belongs to
a store read now: its resolved path, else its file name only when one record has that name. The file-name lookup
took the last record of the name, so of two same-named stores (a/x.zarr, b/x.zarr) moved elsewhere one was checked
against the other's affine."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.data.cube_open import recorded_for
from geodino.errors import InputError

A = [10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0]
B = [10.0, 0.0, 600000.0, 0.0, -10.0, 4650000.0]


def test_the_resolved_path_wins_over_a_namesake(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    records = {str((tmp_path / "a" / "x.zarr").resolve()): A, str((tmp_path / "b" / "x.zarr").resolve()): B}
    monkeypatch.chdir(tmp_path)
    assert recorded_for(records, "a/x.zarr", "tile list l.parquet") == A  # relative spelling, resolved
    assert recorded_for(records, str(tmp_path / "b" / "x.zarr"), "tile list l.parquet") == B


def test_one_record_of_the_name_is_used_for_a_moved_store():
    records = {"/old/a/x.zarr": A, "/old/b/y.zarr": B}
    assert recorded_for(records, "/new/a/x.zarr", "tile list l.parquet") == A
    assert recorded_for(records, "/new/b/y.zarr", "tile list l.parquet") == B
    assert recorded_for(records, "/new/z.zarr", "tile list l.parquet") is None  # not recorded: not checked


def test_two_records_of_the_name_and_no_path_match_are_refused_in_one_line():
    records = {"/old/a/x.zarr": A, "/old/b/x.zarr": B}
    with pytest.raises(InputError) as err:
        recorded_for(records, "/new/a/x.zarr", "tile list l.parquet")
    text = str(err.value)
    assert "\n" not in text
    assert "tile list l.parquet" in text and "/old/a/x.zarr" in text and "/old/b/x.zarr" in text
    assert "/new/a/x.zarr" in text and "data curate" in text


def test_the_path_match_is_taken_even_with_two_namesakes(tmp_path):
    store = tmp_path / "x.zarr"
    records = {"/elsewhere/x.zarr": B, str(Path(store).resolve()): A}
    assert recorded_for(records, str(store), "tile list l.parquet") == A
