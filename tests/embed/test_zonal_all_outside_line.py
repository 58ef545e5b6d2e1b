"""`embed zonal` with every polygon off the raster printed two lines: the warning counting the polygons without an
embedding ("geodino: warning: 2 of 2 polygons have no embedding ...") and then the error that refuses the run. The
error comes alone now (one line, exit 2); some polygons off the raster still warn and write the file."""

from __future__ import annotations

import warnings

import geopandas as gpd

from geodino import cli
from tests.embed.test_classify import cell_box, feature_raster, stripes


def _zones(path, cols_rows):
    geoms = [cell_box(c, r) for c, r in cols_rows]
    gpd.GeoDataFrame({"name": [str(i) for i in range(len(geoms))]}, geometry=geoms, crs="EPSG:32633").to_file(path)
    return path


def _run(feats, zones, out) -> tuple[int, list[str]]:
    """Exit code and the warnings' messages (the CLI prints each as a line; pytest records them instead)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli.main(["embed", "zonal", str(feats), str(zones), "--out", str(out)])
    return code, [str(w.message) for w in caught]


def test_all_polygons_outside_is_the_error_line_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    feats = feature_raster(tmp_path / "f.tif", stripes())
    out = tmp_path / "z.parquet"
    code, said = _run(feats, _zones(tmp_path / "off.gpkg", [(200, 5), (5, 300)]), out)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and said == [] and len(lines) == 1, (said, lines)
    assert "all 2 polygons in" in lines[0] and "outside the feature" in lines[0] and not out.exists()
    code, said = _run(feats, _zones(tmp_path / "half.gpkg", [(5, 5), (200, 5)]), out)
    assert code == 0 and any("1 of 2 polygons has no embedding" in m for m in said) and out.exists()
