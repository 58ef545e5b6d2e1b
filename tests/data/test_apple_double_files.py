"""macOS AppleDouble files (`._scene.tif` beside each file copied from a Mac, `__MACOSX/` in a Mac zip) are no
inputs of any folder listing: a raster source stopped at the first one ("not recognized as being in a supported file
format"), a tar folder warned of a corrupt `._shard.tar` on every run. A user's other hidden files stay listed where
they were (raster folders)."""

from __future__ import annotations

import pytest

from geodino.data.paths import resolve_paths


@pytest.mark.parametrize("recursive", [True, False])
def test_apple_double_files_are_never_listed(tmp_path, recursive) -> None:
    (tmp_path / "scene.tif").write_bytes(b"x")
    (tmp_path / "._scene.tif").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble magic: no raster
    (tmp_path / ".mine.tif").write_bytes(b"x")  # a user's hidden raster: still listed
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "._scene.tif").write_bytes(b"\x00\x05\x16\x07")
    listed = resolve_paths(tmp_path, [".tif"], recursive=recursive)
    assert listed == [str(tmp_path / ".mine.tif"), str(tmp_path / "scene.tif")]


def test_a_real_folder_named_like_a_mac_zip_inside_is_left_out_only_as_that_name(tmp_path) -> None:
    (tmp_path / "MACOSX").mkdir()  # not the zip's folder
    (tmp_path / "MACOSX" / "a.tar").write_bytes(b"x")
    (tmp_path / "._b.tar").write_bytes(b"x")
    assert resolve_paths(tmp_path, [".tar"], what="tar shard") == [str(tmp_path / "MACOSX" / "a.tar")]
