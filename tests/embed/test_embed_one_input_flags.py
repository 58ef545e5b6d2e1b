"""Flags one raster cannot use are one line (exit 2), not ignored: `--asset`/`--asset-bands` (STAC input; a folder of
scenes already refused them) and `--variable` (a datacube's; `--time` was refused on a raster already). Before,
`geodino embed in.tif --asset nir08 ...` embedded every band of in.tif and said nothing."""

from __future__ import annotations

import pytest

from tests import helpers
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--asset", "visual"], "--asset visual applies to STAC input"),
        (["--asset-bands", "red,nir"], "--asset-bands red,nir applies to STAC input"),
        (["--asset", "a", "--asset-bands", "b"], "--asset a and --asset-bands b apply to STAC input"),
        (["asset=visual"], "--asset visual applies to STAC input"),  # the config key too
        (["--variable", "reflectance"], "--variable reflectance (variable=) chooses a variable of a datacube"),
    ],
)
def test_flags_one_raster_cannot_use_are_refused(tmp_path, capsys, flags, said):
    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32))
    line = one_line_exit_2(
        capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", *RUN, *flags, expect=(said,)
    )
    assert str(src) in line and "drop" in line


def test_a_raster_without_those_flags_still_embeds(tmp_path, capsys):
    from geodino import cli

    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32))
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), *RUN]) == 0
    assert (tmp_path / "o.tif").is_file()
