"""A product's output that is one of its own inputs is refused in one line (exit 2) before anything is read: with
--overwrite, `classify f.tif labels.gpkg --out f.tif` replaced the feature raster it had just read by the class map
(and `zonal f.tif z.parquet --out z.parquet` the polygons, `change a.tif b.tif --out b.tif` date B)."""

from __future__ import annotations

import geopandas as gpd
import pytest

from geodino import cli
from tests.embed.test_classify import feature_raster, polygons, stripes


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("out_is_in")
    lab = polygons(root / "lab.gpkg", crs="EPSG:32633")
    gpd.read_file(lab).to_parquet(root / "zones.parquet")
    return {
        "a": feature_raster(root / "a.tif", stripes()),
        "b": feature_raster(root / "b.tif", stripes(seed=1)),
        "lab": lab,
        "zones": root / "zones.parquet",
    }


@pytest.mark.parametrize(
    ("argv", "clobbered", "said"),
    [
        (["pca", "{a}", "--out", "{a}"], "a", "--out {a} is the feature raster that pca reads"),
        (["cluster", "{a}", "--out", "{a}", "--k", "3"], "a", "feature raster that cluster reads"),
        (["similar", "{a}", "--polygon", "{lab}", "--out", "{a}"], "a", "feature raster that similar reads"),
        (["classify", "{a}", "{lab}", "--column", "landcover", "--out", "{a}"], "a", "feature raster that classify"),
        (["change", "{a}", "{b}", "--out", "{b}"], "b", "--out {b} is the feature raster B that change reads"),
        (["zonal", "{a}", "{zones}", "--out", "{zones}"], "zones", "--out {zones} is the polygons file that zonal"),
    ],
)
def test_an_output_that_is_an_input_is_refused(inputs, capsys, monkeypatch, argv, clobbered, said):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    before = inputs[clobbered].read_bytes()
    names = {k: str(v) for k, v in inputs.items()}
    code = cli.main(["embed", *(a.format(**names) for a in argv), "--overwrite"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and said.format(**names) in lines[0], lines
    assert "name the output another file" in lines[0] and inputs[clobbered].read_bytes() == before
