"""`geodino data index --out`: a footprint is the raster's grid outline from its header, nodata areas included (the
docs said so; the command's help said 'outlines of the valid pixels', which it never drew: RGB.byte.tif's footprint
is 4.55 deg2 where its valid pixels cover 3.07)."""

from __future__ import annotations

import json

import numpy as np

from geodino import cli

from .conftest import write_tif


def test_the_footprint_is_the_grid_with_its_nodata_half_and_the_help_says_so(tmp_path, capsys):
    data = np.full((1, 20, 20), 100, np.uint16)
    data[:, :, 10:] = 0  # the east half is nodata
    tif = write_tif(tmp_path / "half.tif", data, crs="EPSG:4326", origin=(10.0, 50.0), res=0.1, nodata=0)
    out = tmp_path / "fp.geojson"
    assert cli.main(["data", "index", str(tif), "--out", str(out)]) == 0
    (feature,) = json.loads(out.read_text())["features"]
    lons = [x for x, _ in feature["geometry"]["coordinates"][0]]
    assert min(lons) == 10.0 and max(lons) == 12.0  # the whole grid (to 12.0), not the valid half (to 11.0)
    capsys.readouterr()
    try:
        cli.main(["data", "index", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert "nodata areas" in text
    # the valid pixels are named only as what the opt-in --valid draws (test_data_index_valid.py)
    assert text.replace("with --valid, the outlines of the valid pixels", "").count("valid pixels") == 1
    assert "--valid with --out: trace each raster's valid pixels" in text
