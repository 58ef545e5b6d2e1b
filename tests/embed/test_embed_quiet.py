"""`embed_raster(..., progress=False)` from Python is quiet on stderr: it printed the command's lines anyway
("geodino: input DN -> reflectance ...", "geodino: time ...", "geodino: wrote ...", "nothing to resume") into a
user's notebook or script (audit). The `geodino embed` command still prints exactly those lines, with or without
--no-progress; a Python call with the bar prints them too; a warning (something that went wrong) comes regardless."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.embed import embed_raster
from geodino.embed.config import EmbedConfig
from geodino.embed.pipeline import run_lines, says
from tests.embed.conftest import random_image, read_all, write_tif

UINT8_LINE = (
    "geodino: input DN -> reflectance "
    "x/255 (the default for uint8 input; --sensor/--scale to change)"
)  # the dtype default, said as such

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"  # a geodino ViT: the command also says its inference path


def test_progress_false_from_python_says_nothing(tmp_path, conv_bb, capfd):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    capfd.readouterr()
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, progress=False)
    assert capfd.readouterr().err == ""  # nor a bar, nor GDAL's log on the process's stderr
    assert out.exists() and read_all(out)[0].shape == (8, 8, 8)
    embed_raster(src, conv_bb, out, tile=32, overlap=0, progress=False, resume=True)  # nothing to resume
    assert capfd.readouterr().err == ""
    embed_raster(src, conv_bb, tmp_path / "b.tif", tile=32, overlap=0)  # the bar: someone is watching
    err = capfd.readouterr().err
    assert UINT8_LINE in err
    assert f"geodino: wrote {tmp_path / 'b.tif'} (8 bands, 8 x 8 cells (width x height) of 4 px, " in err


def test_a_warning_still_reaches_a_quiet_run(tmp_path, conv_bb, capfd):
    src = write_tif(tmp_path / "dn.tif", random_image(32, 32, dtype="uint16"))
    capfd.readouterr()
    with pytest.warns(UserWarning, match=r"dn\.tif is uint16: assuming reflectance = DN / 10000"):
        out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, progress=False)
    assert capfd.readouterr().err == "" and read_all(out)[4]["GEODINO_INPUT_SCALE"] == "x/10000 (uint16, assumed)"


def test_the_command_prints_its_lines_with_and_without_the_bar(tmp_path, capsys):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    run = ["embed", str(src), "-b", SPEC, "--tile", "32", "--overlap", "0"]
    assert cli.main([*run, "--out", str(tmp_path / "a.tif"), "--no-progress"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == UINT8_LINE, lines
    assert lines[1].startswith("geodino: inference path "), lines
    assert lines[-2].startswith("geodino: time ") and lines[-1].startswith(f"geodino: wrote {tmp_path / 'a.tif'} (")
    assert len(lines) == 4  # no bar
    assert cli.main([*run, "--out", str(tmp_path / "a.tif"), "--no-progress", "--resume"]) == 0
    assert capsys.readouterr().err == f"geodino: {tmp_path / 'a.tif'} is already complete; nothing to resume\n"
    assert cli.main([*run, "--out", str(tmp_path / "b.tif")]) == 0  # with the bar
    err = capsys.readouterr().err
    assert UINT8_LINE in err and "geodino: inference path " in err
    assert f"geodino: wrote {tmp_path / 'b.tif'} (" in err
    np.testing.assert_array_equal(read_all(tmp_path / "a.tif")[0], read_all(tmp_path / "b.tif")[0])


def test_says_follows_the_bar_or_the_command():
    quiet, bar = EmbedConfig(progress=False), EmbedConfig(progress=True)
    assert (says(quiet), says(bar)) == (False, True)
    with run_lines():
        assert says(quiet) and says(bar)
        with run_lines():  # nested: still on until the outer one ends
            pass
        assert says(quiet)
    assert not says(quiet)
