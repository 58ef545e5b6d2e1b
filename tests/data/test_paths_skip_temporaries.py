"""A folder given as input (`paths:` of a source, a folder of feature rasters or chips) listed the temporaries of
geodino's atomic writes beside its files: a live writer's incomplete file, or a killed run's cut-off one, was read as
one more input. They are no inputs; a user's other hidden files still are."""

from __future__ import annotations

import pytest

from geodino.data.paths import resolve_paths
from geodino.errors import InputError
from geodino.io import temp_name


@pytest.mark.parametrize("recursive", [True, False])
def test_a_folder_lists_no_temporary_of_an_atomic_write(tmp_path, recursive) -> None:
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / ".mine.tif").write_bytes(b"x")  # a user's hidden file: listed as before
    temp_name(tmp_path / "b.tif").write_bytes(b"cut")  # b.tif being written, or cut off by a kill
    temp_name(tmp_path / "c.tif").with_name(temp_name(tmp_path / "c.tif").name + ".L0.tif").write_bytes(b"cut")
    listed = resolve_paths(tmp_path, [".tif"], recursive=recursive)
    assert listed == [str(tmp_path / ".mine.tif"), str(tmp_path / "a.tif")]


def test_a_folder_holding_only_a_temporary_holds_no_input(tmp_path) -> None:
    temp_name(tmp_path / "scene.tif").write_bytes(b"cut")
    with pytest.raises(InputError, match="holds no raster files"):
        resolve_paths(tmp_path, [".tif"])
