"""`embed similar --point X,Y --layer L` ignored `--layer` silently (it picks a layer of the `--polygon` file); it is
one line now (exit 2). With `--polygon`, the layer read is recorded beside the file (`GEODINO_QUERY_LAYER`)."""

from __future__ import annotations

import geopandas as gpd
import rasterio

from geodino import cli
from tests.embed.test_classify import T, cell_box, feature_raster, stripes


def test_layer_with_a_point_is_refused_and_a_polygon_layer_is_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    feats = feature_raster(tmp_path / "f.tif", stripes())
    x, y = T * (20.5, 10.5)
    out = tmp_path / "s.tif"
    code = cli.main(["embed", "similar", str(feats), "--point", f"{x},{y}", "--layer", "q", "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines == [
        "geodino: error: --layer q picks a layer of the --polygon file, and the query is a --point: drop --layer "
        "(layer= in Python)"
    ]
    assert not out.exists()
    zones = tmp_path / "q.gpkg"
    for name, col in (("a", 5), ("q", 35)):
        gpd.GeoDataFrame({"n": [name]}, geometry=[cell_box(col, 10)], crs="EPSG:32633").to_file(zones, layer=name)
    assert cli.main(["embed", "similar", str(feats), "--polygon", str(zones), "--layer", "q", "--out", str(out)]) == 0
    with rasterio.open(out) as ds:
        assert ds.tags()["GEODINO_QUERY_LAYER"] == "q"
        sim = ds.read(1)
    assert sim[10:20, 30:].mean() > 0.9 > sim[10:20, :15].mean()  # the query is layer q's polygon, the third stripe
