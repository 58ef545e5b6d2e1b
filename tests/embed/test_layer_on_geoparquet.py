"""`--layer` given for a GeoParquet file (one table, no layers) was ignored silently: `zonal f.tif z.parquet --layer
fields` read the whole table as if the layer had been found. It is one line now (exit 2) for zonal, classify LABELS and
`similar --polygon`."""

from __future__ import annotations

import geopandas as gpd
import pytest

from geodino import cli
from tests.embed.test_classify import feature_raster, polygons, stripes


@pytest.mark.parametrize(
    "argv",
    [
        ["zonal", "{f}", "{z}", "--out", "{out}.parquet"],
        ["classify", "{f}", "{z}", "--column", "landcover", "--out", "{out}.tif"],
        ["similar", "{f}", "--polygon", "{z}", "--out", "{out}.tif"],
    ],
)
def test_layer_of_a_geoparquet_file_is_refused(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    z = tmp_path / "z.parquet"
    gpd.read_file(polygons(tmp_path / "lab.gpkg", crs="EPSG:32633")).to_parquet(z)
    names = {"f": feature_raster(tmp_path / "f.tif", stripes()), "z": z, "out": tmp_path / "o"}
    code = cli.main(["embed", *(a.format(**names) for a in argv), "--layer", "fields"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].endswith(f"file {z} is GeoParquet, one table without layers; "
                                                               "drop --layer"), lines  # fmt: skip
    assert "--layer fields" in lines[0] and not list(tmp_path.glob("o.*"))
