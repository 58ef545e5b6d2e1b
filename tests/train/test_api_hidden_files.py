"""`geodino.pretrain(DIR)` decides the folder's kind (images, raster, tar) from a listing of it, which counted hidden
files and folders that the images source leaves out (`resolve_paths(hidden=False)`): a hidden `.cache/` holding a
georeferenced TIFF refused a folder of chips as two kinds of data, a `.thumbnails/` of PNGs did the same to a folder
of GeoTIFFs, and a folder of nothing but macOS `._x.jpg` files was taken for images. The decision now lists the
folder as the images source does."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geodino.errors import InputError
from geodino.train.api import source_of
from tests.helpers import write_tif

# a macOS AppleDouble file (`._name` beside each file a Mac copies to a foreign disk): its magic and header
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + b"\x00" * 200


def photo(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)


def test_photos_with_macos_files_are_images(tmp_path):
    """`._p.jpg` beside each photo and a `.DS_Store`: images (they were, as chips; a guard)."""
    for i in range(2):
        photo(tmp_path / f"p{i}.jpg")
        (tmp_path / f"._p{i}.jpg").write_bytes(APPLE_DOUBLE)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 32)
    assert source_of(tmp_path) == f"data.sources=[{{type: images, paths: ['{tmp_path}']}}]"


def test_a_hidden_folder_does_not_make_the_data_two_kinds(tmp_path):
    chips = tmp_path / "chips"
    for i in range(2):
        photo(chips / f"c{i}.png")
    (chips / ".cache").mkdir()
    write_tif(chips / ".cache" / "g.tif", np.zeros((3, 8, 8), np.uint8))  # georeferenced, in a hidden folder
    assert source_of(chips) == f"data.sources=[{{type: images, paths: ['{chips}']}}]"  # was: refused, mixed kinds

    rasters = tmp_path / "rasters"
    rasters.mkdir()
    write_tif(rasters / "scene.tif", np.zeros((3, 8, 8), np.uint8))
    photo(rasters / ".thumbnails" / "scene.png")
    (rasters / "._scene.tif").write_bytes(APPLE_DOUBLE)
    assert source_of(rasters) == f"data.sources=[{{type: raster, paths: ['{rasters}'], sensor: 'sat493m'}}]"


def test_a_folder_of_only_hidden_files_holds_no_data(tmp_path):
    """Only `._x.jpg` files: no kind (it was `images`, which then found no image when the run built its source)."""
    for i in range(2):
        (tmp_path / f"._p{i}.jpg").write_bytes(APPLE_DOUBLE)
    with pytest.raises(InputError, match=r"holds no image, raster or tar shard files"):
        source_of(tmp_path)
