"""`bands` given as names outside the `--bands` flag: a `bands:` key of an embed YAML config, a `bands=[...]`
override and Python's `bands=[...]` were refused ('could not be converted to Integer': the config typed bands as
list[int]) while `--bands B04,B03,B02` numbered the same names. Now they are numbered per input by the flag's rule
(`command_flags.resolve_band_names`: band descriptions, else --sensor's names, else b1..bN) and checked as it checks
them (no mix of numbers and names, no name twice)."""

from __future__ import annotations

import json

import pytest

from geodino import cli
from geodino.embed import embed_raster
from geodino.errors import ConfigError, InputError
from tests import helpers
from tests.embed.conftest import random_image, read_all
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
S2 = ["B02", "B03", "B04", "B08"]  # blue, green, red, nir


def _tif(path, descriptions=S2):
    return helpers.write_tif(path, random_image(32, 40, 4, seed=0), descriptions=descriptions)


def _input_bands(path):
    return json.loads(read_all(path)[4]["GEODINO_INPUT_BANDS"])


def test_a_yaml_bands_key_of_names(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif")
    cfg = tmp_path / "embed.yaml"
    cfg.write_text("bands: [B04, B03, B02]\n")
    out = tmp_path / "o.tif"
    code = cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), "--config", str(cfg), *RUN])
    err = capsys.readouterr().err
    assert code == 0, err
    assert _input_bands(out) == [3, 2, 1]
    assert "reads bands 3,2,1 of" in err  # the line the flag prints too


@pytest.mark.parametrize(("override", "want"), [("bands=[nir,red,green]", [4, 1, 2]), ("bands=[4,3,2]", [4, 3, 2])])
def test_a_bands_override_of_names_or_numbers(tmp_path, capsys, override, want):
    src = _tif(tmp_path / "in.tif", None)  # no descriptions: --sensor's names (and aliases) number them
    out = tmp_path / "o.tif"
    argv = ["embed", str(src), "-b", SPEC, "--out", str(out), "--sensor", "naip", override, *RUN]
    code = cli.main(argv)
    assert code == 0, capsys.readouterr().err
    assert _input_bands(out) == want


def test_the_flag_wins_over_the_yaml_names(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif")
    cfg = tmp_path / "embed.yaml"
    cfg.write_text("bands: [B04, B03, B02]\n")
    out = tmp_path / "o.tif"
    argv = ["embed", str(src), "-b", SPEC, "--out", str(out), "--config", str(cfg), "--bands", "1,2,3", *RUN]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert _input_bands(out) == [1, 2, 3]


@pytest.mark.parametrize(
    ("override", "said"),
    [("bands=[B04,3]", "mixes band numbers (3) and names"), ("bands=[B04,b04]", "names band 'b04' twice")],
)
def test_a_mix_or_a_name_twice_is_one_line(tmp_path, capsys, override, said):
    src = _tif(tmp_path / "in.tif")
    one_line_exit_2(
        capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", override, *RUN, expect=(said,)
    )


def test_python_bands_names(tmp_path, conv_bb):
    src = _tif(tmp_path / "in.tif")
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", bands=["b04", "B03", "B02"], progress=False)
    assert _input_bands(out) == [3, 2, 1]
    with pytest.raises(InputError, match=r"has no band 'red' \(its bands: B02, B03, B04, B08\)"):
        embed_raster(src, conv_bb, tmp_path / "p.tif", bands=["red", "green", "blue"], progress=False)
    with pytest.raises(ConfigError, match="mixes band numbers"):
        embed_raster(src, conv_bb, tmp_path / "q.tif", bands=["B04", 3], progress=False)
    assert not (tmp_path / "p.tif").exists() and not (tmp_path / "q.tif").exists()
