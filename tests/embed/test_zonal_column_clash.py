"""A polygons file with a column of its own named `status`, `n_cells` or `embedding` (a field survey's
`status: surveyed`) had it replaced by zonal's silently; a warning names it now. An earlier zonal output (all three
columns) rerun on another raster is replaced without a word, as before."""

from __future__ import annotations

import warnings

import geopandas as gpd

from geodino.embed.products import zonal_embeddings
from tests.embed.test_classify import feature_raster, polygons, stripes


def _messages(feats, zones, out) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zonal_embeddings(feats, zones, out)
    return [str(w.message) for w in caught if "zonal writes" in str(w.message)]


def test_a_users_status_column_is_named_when_replaced(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    zones = gpd.read_file(polygons(tmp_path / "lab.gpkg", crs="EPSG:32633"))
    zones["status"] = "surveyed"
    zones.to_file(tmp_path / "survey.gpkg")
    said = _messages(feats, tmp_path / "survey.gpkg", tmp_path / "z.parquet")
    assert said == [
        f"polygons in {tmp_path / 'survey.gpkg'} have a column status, which zonal writes: replaced in z.parquet "
        "by its own (rename it in the file to keep both)"
    ]
    assert set(gpd.read_parquet(tmp_path / "z.parquet")["status"]) == {"ok"}
    assert _messages(feats, tmp_path / "z.parquet", tmp_path / "again.parquet") == []  # an earlier zonal output
