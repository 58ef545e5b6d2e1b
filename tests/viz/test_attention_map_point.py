"""viz attention --point in map coordinates (--point-crs) that misses the pixels read: the one-line error names the
point as given, its CRS and the file's pixel it falls on, and the --window (or the raster) it misses. It named
window-relative pixels the user never wrote (`point (col -23, row -22) is outside the 32 x 32 px window`)."""

from __future__ import annotations

from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def test_a_map_point_outside_the_window_is_named_in_the_files_pixels(tmp_path, capsys):
    tif = write_tif(tmp_path / "s.tif", random_image(64, 64))  # origin 500000, 4000000; 10 m pixels
    base = ["viz", "attention", tif, "-b", SPEC, "-o", tmp_path / "att"]
    one_line_exit_2(
        capsys,
        tmp_path,
        *base, "--window", "32", "32", "32", "32", "--point", "500095,3999895", "--point-crs",
        expect=("--point 500095,3999895 (in the raster's CRS) falls on pixel col 9, row 10 of",
                "outside --window 32 32 32 32"),
    )  # fmt: skip
    one_line_exit_2(
        capsys,
        tmp_path,
        *base, "--point", "500995,3999895", "--point-crs", "EPSG:32633",
        expect=("--point 500995,3999895 (in EPSG:32633) falls on pixel col 99, row 10 of",
                "outside the raster (64 x 64 px, width x height)"),
    )  # fmt: skip


def test_a_pixel_point_just_left_of_the_image_is_outside_it(tmp_path, capsys):
    """Pixel --point -0.5,3 lies left of column 0 (floor: -1); int() truncated it to column 0 and accepted it."""
    tif = write_tif(tmp_path / "s.tif", random_image(64, 64))
    one_line_exit_2(
        capsys,
        tmp_path,
        "viz", "attention", tif, "-b", SPEC, "-o", tmp_path / "att", "--point=-0.5,3",
        expect=("point (col -1, row 3) is outside the 64 x 64 px",),
    )  # fmt: skip
