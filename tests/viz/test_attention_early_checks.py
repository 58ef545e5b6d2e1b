"""viz attention refuses what needs no forward pass before it: a --point spelt as a negative comma list (a point left
of the image, a western longitude) was argparse's "expected at least one argument"; a point outside the image, a
--heads index the block lacks and an --out naming a file were refused only after the forward (minutes for a ViT-L
over a large window)."""

from __future__ import annotations

import pytest

from geodino.viz.commands import join_negative_lists
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


@pytest.fixture
def no_forward(monkeypatch):
    """Any forward pass of the attention run fails the test."""
    from geodino.backbones.frozen import FrozenBackbone

    def boom(*args, **kwargs):
        raise AssertionError("the forward pass ran before the refusal")

    monkeypatch.setattr(FrozenBackbone, "features", boom)


def test_negative_comma_lists_join_their_flag():
    assert join_negative_lists(["--point", "-78.04,24.71", "--point-crs", "EPSG:4326"]) == [
        "--point=-78.04,24.71",
        "--point-crs",
        "EPSG:4326",
    ]
    assert join_negative_lists(["--window", "-8,0,64,64"]) == ["--window=-8,0,64,64"]
    # a single negative number is a value already; a dash option stays an option; nothing after --
    assert join_negative_lists(["--point", "-0.5", "3", "--heads", "0"]) == ["--point", "-0.5", "3", "--heads", "0"]
    assert join_negative_lists(["--point", "--mass", "--", "--point", "-1,2"]) == [
        "--point",
        "--mass",
        "--",
        "--point",
        "-1,2",
    ]


def test_a_point_left_of_the_image_as_a_comma_list_is_refused_before_the_forward(tmp_path, capsys, no_forward):
    tif = write_tif(tmp_path / "s.tif", random_image(64, 64))
    base = ["viz", "attention", tif, "-b", SPEC, "-o", tmp_path / "att"]
    one_line_exit_2(capsys, tmp_path, *base, "--point", "-0.5,3", expect=("point (col -1, row 3) is outside",))
    one_line_exit_2(
        capsys,
        tmp_path,
        *base,
        "--point",
        "60",
        "70",
        expect=("--point (col 60, row 70) is outside the 64 x 64 px", "(point= in Python)"),  # flag and keyword
    )
    one_line_exit_2(capsys, tmp_path, *base, "--heads", "0", "5", expect=("--heads [0, 5]", "heads 0..2"))


def test_a_western_lon_lat_point_is_read(tmp_path, capsys, no_forward):
    """`--point -119.0,30.0 --point-crs EPSG:4326` is parsed (here: far from the UTM 33N raster, so refused as
    outside it, naming the point as given)."""
    tif = write_tif(tmp_path / "s.tif", random_image(64, 64))
    one_line_exit_2(
        capsys,
        tmp_path,
        *["viz", "attention", tif, "-b", SPEC, "-o", tmp_path / "att"],
        *["--point", "-119.0,30.0", "--point-crs", "EPSG:4326"],
        expect=("--point -119.0,30.0 (in EPSG:4326)",),
    )


def test_an_out_naming_a_file_is_refused_before_the_forward(tmp_path, capsys, no_forward):
    tif = write_tif(tmp_path / "s.tif", random_image(64, 64))
    (tmp_path / "notes.txt").write_text("mine")
    one_line_exit_2(
        capsys,
        tmp_path,
        *["viz", "attention", tif, "-b", SPEC, "-o", tmp_path / "notes.txt"],
        expect=("notes.txt is a file, not a folder",),
    )
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_sensor_without_rgb_bands_says_which_bands_the_pictures_show(tmp_path, capsys):
    """Five bands B1..B5 (a `data stats` YAML names no RGB bands): the pictures show the first three as red, green,
    blue, said on stderr; with rgb_bands in the YAML nothing is said."""
    from geodino import cli
    from geodino.data.sensor_yaml import save_sensor_yaml
    from geodino.data.sensors import Sensor

    tif = write_tif(tmp_path / "s.tif", random_image(32, 32, c=5))
    spec = "arch:vit_tiny?depth=1&patch_size=8&in_chans=5&seed=0"
    plain = Sensor("five", ("B1", "B2", "B3", "B4", "B5"), 1 / 255, (0.4,) * 5, (0.2,) * 5, False)
    for name, sensor, said in [
        ("plain", plain, True),
        ("rgb", Sensor(**{**plain.__dict__, "rgb_bands": ("B3", "B2", "B1")}), False),
    ]:
        yaml_path = save_sensor_yaml(sensor, tmp_path / f"{name}.yaml")
        capsys.readouterr()
        assert (
            cli.main(["viz", "attention", str(tif), "-b", spec, "--sensor", str(yaml_path), "-o", str(tmp_path / name)])
            == 0
        )
        err = capsys.readouterr().err
        assert ("show bands B1, B2, B3 as red, green, blue" in err) is said, err
