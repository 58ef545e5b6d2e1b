"""`--sensor S --scale F`: the sensor's DN rule went first and --scale was dropped without a word (a uint16 input
with `--sensor landsat8 --scale 0.5` recorded input_scale "sensor:landsat8"); both are now one line, as scale with
band_scale already was. Each alone still embeds."""

from __future__ import annotations

import json

import pytest

from geodino import cli
from geodino.embed import embed_raster
from geodino.errors import ConfigError
from tests import helpers
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1", "--bands", "4,3,2"]


def test_sensor_with_scale_is_refused(tmp_path, capsys):
    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32, 6, dtype="uint16"))
    argv = ("embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", *RUN)
    one_line_exit_2(
        capsys, tmp_path, *argv, "--sensor", "landsat8", "--scale", "0.5",
        expect=("--sensor landsat8 and --scale 0.5 both give the DN -> reflectance rule", "keep one"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"--sensor landsat8 and --scale 0\.5 both"):
        embed_raster(src, SPEC, tmp_path / "p.tif", sensor="landsat8", scale=0.5, progress=False)
    for flags, rule in ((["--sensor", "landsat8"], "sensor:landsat8"), (["--scale", "0.5"], "x*0.5")):
        out = tmp_path / f"{flags[0][2:]}.tif"
        assert cli.main([str(a) for a in (*argv[:5], out, *RUN, *flags)]) == 0, capsys.readouterr().err
        props = json.loads(out.with_name(f"{out.stem}.stac.json").read_text())["properties"]
        assert props["geodino:input_scale"].startswith(rule)
