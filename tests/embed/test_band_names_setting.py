"""Band names that came from a `bands:` YAML key, a `bands=[...]` override or Python's `bands=[...]` are named so in
embed's messages (`resolve_band_names(setting=...)`): they said '--bands ...', a flag the user never typed."""

from __future__ import annotations

import pytest

from geodino import cli
from geodino.embed import embed_raster
from geodino.errors import ConfigError, InputError
from tests import helpers
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
S2 = ["B02", "B03", "B04", "B08"]
NO_RED = "has no band 'red' (its bands: B02, B03, B04, B08); "


def _tif(path, descriptions=S2):
    return helpers.write_tif(path, random_image(32, 40, 4, seed=0), descriptions=descriptions)


def test_a_yaml_keys_names_are_named_as_the_key(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif")
    cfg = tmp_path / "embed.yaml"
    cfg.write_text("bands: [B04, B03, B02]\n")
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), "--config", str(cfg), *RUN]) == 0
    assert f"geodino: bands=[B04, B03, B02] reads bands 3,2,1 of {src}\n" in capsys.readouterr().err
    cfg.write_text("bands: [red, green, blue]\n")
    line = one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "p.tif", "--config", cfg,
                           *RUN)  # fmt: skip
    assert line.endswith(
        f"{NO_RED}pass bands= names among those, or their 1-based numbers (1..4); red is B04 in "
        "sentinel2_l1c/sentinel2_l2a: pass bands= B04 or that sensor="
    ), line
    assert "--bands" not in line and "--sensor" not in line


def test_an_override_naming_one_band_twice(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif")
    line = one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif",
                           "bands=[B04,b08,nir]", "--sensor", "sentinel2_l2a", *RUN)  # fmt: skip
    assert f"bands=[B04, b08, nir]: b08 and nir are both band 4 (B08) of {src}; name each band once" in line, line


def test_the_flag_still_says_the_flag(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif")
    assert (
        cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), "--bands", "B04,B03,B02", *RUN]) == 0
    )
    assert f"geodino: --bands B04,B03,B02 reads bands 3,2,1 of {src}\n" in capsys.readouterr().err


def test_pythons_names(tmp_path, conv_bb, capsys):
    # no descriptions: b1..b4 (uint16: a 4-band uint8 file is GDAL's RGBA, its bands named red, green, blue, alpha)
    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 40, 4, seed=0, dtype="uint16"))
    with pytest.raises(InputError) as err:
        embed_raster(src, conv_bb, tmp_path / "p.tif", bands=["red", "green", "blue"], progress=False)
    msg = str(err.value)
    assert msg.endswith(
        "pass bands= names among those, or their 1-based numbers (1..4); the file names no bands: sensor=NAME (a "
        "sensor of 4 bands) gives them its names"
    ), msg
    assert "--bands" not in msg
    named = _tif(tmp_path / "named.tif")
    with pytest.raises(ConfigError, match=r"^bands=\[B08, nir, B04\]: B08 and nir are both band 4 \(B08\)"):
        embed_raster(named, conv_bb, tmp_path / "q.tif", bands=["B08", "nir", "B04"], sensor="sentinel2_l2a",
                     progress=False)  # fmt: skip


def test_a_false_colour_files_rgb_tags_are_said_to_be_only_tags(tmp_path, capsys):
    # a 3-band uint8 GeoTIFF without descriptions: GDAL tags it red, green, blue, a NIR/red/green (CIR) file too
    cir = helpers.write_tif(tmp_path / "cir.tif", random_image(32, 40, 3, seed=0, dtype="uint8"))
    line = one_line_exit_2(capsys, tmp_path, "embed", cir, "-b", SPEC, "--out", tmp_path / "o.tif",
                           "--bands", "nir,red,green", *RUN)  # fmt: skip
    assert "has no band 'nir' (its bands: red, green, blue)" in line, line
    assert line.endswith(
        "; red, green, blue are only its colour tags (GDAL writes them on any 3- or 4-band 8-bit GeoTIFF, a "
        "false-colour one too): --sensor NAME of 3 bands names its bands by position"
    ), line
    named = helpers.write_tif(tmp_path / "named.tif", random_image(32, 40, 3, seed=0, dtype="uint8"),
                              descriptions=["red", "green", "blue"])  # fmt: skip
    line = one_line_exit_2(capsys, tmp_path, "embed", named, "-b", SPEC, "--out", tmp_path / "p.tif",
                           "--bands", "nir,red,green", *RUN)  # fmt: skip
    assert "colour tags" not in line, line  # the file itself names its bands so
