"""A tile smaller than one patch stops `data curate` in one line naming the file, its size, the backbone's patch and
the setting to change; it said `tiles of 4x4 px are smaller than one 8 px patch` (no file, no flag). Nothing is left
behind (no chunk was written)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def test_raster_tiles_under_a_patch_name_tile_size(tmp_path, capsys):
    tif = write_tif(tmp_path / "s.tif", random_image(16, 16))
    one_line_exit_2(
        capsys,
        tmp_path,
        *["data", "curate", tif, "--type", "raster", "--tile-size", "4", "-b", SPEC, "-o", tmp_path / "cur"],
        *["--size", "1", "--no-progress"],
        expect=("the tiles of", "s.tif are 4x4 px, smaller than one 8 px patch", "--tile-size", "at least 8 px"),
    )


def test_an_image_under_a_patch_is_named(tmp_path, capsys):
    chips = tmp_path / "chips"
    chips.mkdir()
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(chips / "a.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(chips / "b.png")
    one_line_exit_2(
        capsys,
        tmp_path,
        *["data", "curate", chips, "-b", SPEC, "-o", tmp_path / "cur", "--size", "1", "--no-progress"],
        expect=("a.png is 6x6 px, smaller than one 8 px patch", "move images under 8 px out"),
    )
