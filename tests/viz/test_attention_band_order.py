"""`viz attention` refuses input bands that are the backbone's recorded bands in another order, as `geodino embed`
and the probes do (`geodino.backbones.band_order`): `--bands blue green red` with an export recording red, green,
blue drew the attention of blue fed to the kernels trained on red, silently. Colour tags alone name no band (as in
embed); a photo's decoded bands do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geodino import cli
from tests import helpers
from tests.embed.conftest import random_image
from tests.embed.test_band_order_refused import export  # noqa: F401 (the fixture: an export recording red, green, blue)
from tests.test_bad_inputs import one_line_exit_2


def _files(tmp_path):
    named = helpers.write_tif(
        tmp_path / "in.tif", random_image(32, 40, 3, seed=1), descriptions=["red", "green", "blue"]
    )
    tagged = helpers.write_tif(tmp_path / "tags.tif", random_image(32, 40, 3, seed=1))  # GDAL's RGB colour tags only
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    return named, tagged, tmp_path / "p.png"


def test_bands_in_another_order_are_refused_naming_viz_flags(tmp_path, export, capsys):  # noqa: F811
    named, _, photo = _files(tmp_path)
    out = tmp_path / "maps"
    for src in (named, photo):
        line = one_line_exit_2(
            capsys, tmp_path, "viz", "attention", src, "-b", export, "--out", out, "--bands", "blue", "green", "red"
        )
        assert line == (
            f"geodino: error: bands blue, green, red of {src} are the bands of backbone {export} (red, green, blue) "
            "in another order (each would feed the kernels of another); pass --bands red green blue (bands=['red', "
            f"'green', 'blue'] in Python) to read them in its order, or adapt the backbone to them: --backbone "
            f"'{export}?bands=blue,green,red'"
        ), line
    # a --sensor names the bands of a file with colour tags alone; the backbone loads after the read
    line = one_line_exit_2(
        capsys, tmp_path, "viz", "attention", _files(tmp_path)[1], "-b", export, "--out", out, "--sensor", "imagenet",
        "--bands", "B", "G", "R",
    )  # fmt: skip
    assert "bands B, G, R of" in line and "pass --bands R G B (bands=['R', 'G', 'B'] in Python)" in line, line


@pytest.mark.parametrize(
    "argv",
    [
        ("in.tif", "--bands", "red", "green", "blue"),  # the backbone's order
        ("in.tif", "--bands", "blue", "green", "red", "--adapted"),  # the way out the line offers
        ("tags.tif", "--bands", "blue", "green", "red"),  # colour tags alone: not compared, as in embed
        ("p.png",),
    ],
)
def test_what_runs(tmp_path, export, argv):  # noqa: F811
    _files(tmp_path)
    spec = f"{export}?bands=blue,green,red" if "--adapted" in argv else str(export)
    args = [a for a in argv if a != "--adapted"]
    assert (
        cli.main(["viz", "attention", str(tmp_path / args[0]), "-b", spec, "--out", str(tmp_path / "m"), *args[1:]])
        == 0
    )


def test_band_names_given_in_python_name_the_bands(tmp_path, export):  # noqa: F811
    from geodino.backbones import load_backbone
    from geodino.errors import InputError
    from geodino.viz.attention import read_input

    tagged = _files(tmp_path)[1]
    bb = load_backbone(str(export))
    names = ["red", "green", "blue"]
    with pytest.raises(InputError, match=r"^bands blue, green, red of .*tags\.tif are the bands of backbone"):
        read_input(tagged, bands=["blue", "green", "red"], band_names=names, backbone=bb)
    assert read_input(tagged, bands=names, band_names=names, backbone=bb)["named_bands"] == names
