"""An input GDAL cannot open (a text file named .tif, a download that is an HTML error page) was refused with GDAL's
words alone (`cannot read raster x.tif: 'x.tif' not recognized as being in a supported file format.`); the line now
says what to do, for one raster and for a scene of a many-scene run (refused from the headers, before any scene)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.errors import InputError
from tests.helpers import write_tif


def test_one_raster_gdal_cannot_open(tmp_path):
    from geodino.embed.sources import RasterSource

    junk = tmp_path / "page.tif"
    junk.write_text("<html>not found</html>\n")
    with pytest.raises(InputError) as err:
        RasterSource(str(junk))
    text = str(err.value)
    assert text.startswith(f"cannot read raster {junk}: ") and "supported file format;" in text
    assert text.endswith("check it with gdalinfo, re-download or re-copy it, or remove it")


def test_a_scene_gdal_cannot_open_stops_a_many_scene_run_in_one_line(tmp_path, capsys):
    junk = tmp_path / "a.tif"
    junk.write_text("<html>not found</html>\n")
    ok = write_tif(tmp_path / "b.tif", np.ones((3, 16, 16), "uint8"))
    out = tmp_path / "feats"
    spec = "arch:vit_tiny?patch_size=8&depth=1"
    # the default (--on-error stop); with --on-error skip it is skipped (tests/embed/test_scene_header_skip.py)
    assert cli.main(["embed", str(junk), str(ok), "-b", spec, "--out", str(out)]) == 2
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("geodino: error:")]
    assert f"cannot read scene {junk}: " in line
    assert line.endswith("check it with gdalinfo, re-download or re-copy it, or leave it out of this run")
    assert not out.exists()
