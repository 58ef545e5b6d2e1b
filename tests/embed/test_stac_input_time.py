"""A feature raster of one date of a datacube (`--time`) carries that date as its STAC item's `datetime` (was the
time the raster was written, so a time series of feature rasters could not be searched by date); other inputs keep
the write time."""

from __future__ import annotations

import json

import pytest

from geodino import cli
from geodino.embed.stac_items import _input_datetime
from tests import helpers
from tests.embed.conftest import random_image
from tests.embed.test_cube_time import SPEC, _cube


def test_a_cube_date_is_the_items_datetime(tmp_path, capsys):
    store, _ = _cube(tmp_path / "ts.zarr")
    out = tmp_path / "f.tif"
    argv = ["embed", store, "-b", SPEC, "--out", str(out), "--tile", "32", "--overlap", "0", "--no-progress"]
    assert cli.main([*argv, "--time", "1"]) == 0, capsys.readouterr().err
    props = json.loads((tmp_path / "f.stac.json").read_text())["properties"]
    assert props["geodino:input_time"] == "2024-02-01T10:32:11"
    assert props["datetime"] == "2024-02-01T10:32:11Z" and props["created"] != props["datetime"]


def test_a_raster_keeps_the_write_time(tmp_path, capsys):
    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32))
    argv = ["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "f.tif"), "--tile", "32", "--overlap", "0"]
    assert cli.main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    props = json.loads((tmp_path / "f.stac.json").read_text())["properties"]
    assert "geodino:input_time" not in props and props["datetime"] == props["created"]


@pytest.mark.parametrize(
    ("label", "stac"),
    [
        ("2024-02-01", "2024-02-01T00:00:00Z"),
        ("2024-02-01T10:32:11.5", "2024-02-01T10:32:11.500000Z"),
        ("2024-02-01T10:32:11+02:00", "2024-02-01T08:32:11Z"),
        ("7", None),  # a numeric time coordinate: no date
        ("", None),
    ],
)
def test_input_datetime(label, stac):
    assert _input_datetime(label) == stac
