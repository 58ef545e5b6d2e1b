"""A missing labels/polygons file says what to do: the closest name in its folder (a typo), a missing folder, or
to check the path (it said only "does not exist")."""

from __future__ import annotations

import pytest

from geodino.data.vectors import read_vector
from geodino.errors import InputError


def test_a_missing_vector_file_names_the_close_one_or_what_to_check(tmp_path) -> None:
    (tmp_path / "labels.gpkg").write_bytes(b"")
    with pytest.raises(InputError, match=r"labels file .*labe1s\.gpkg does not exist; did you mean .*labels\.gpkg\?$"):
        read_vector(tmp_path / "labe1s.gpkg", what="labels")
    with pytest.raises(InputError, match=r"its folder .*nowhere does not exist either; check the path$"):
        read_vector(tmp_path / "nowhere" / "z.gpkg")
    with pytest.raises(InputError, match=r"polygons file .*zones\.parquet does not exist; check the path \("):
        read_vector(tmp_path / "zones.parquet")
