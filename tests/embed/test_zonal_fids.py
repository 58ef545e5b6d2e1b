"""`embed zonal`'s warning about polygons without an embedding named them by 0-based row ("first ids: 1") while
QGIS shows a GeoPackage's feature ids, which count from 1 (that polygon is fid 2 there) or are whatever the file
holds. It now gives the layer's fids for files pyogrio reads, and says "rows (0-based)" for GeoParquet."""

from __future__ import annotations

import pytest

from geodino.embed.products import zonal_embeddings
from tests.embed.test_classify import cell_box, feature_raster, stripes

HEAD = "2 of 4 polygons have no embedding ({'outside': 2}); "


def _zones(path, **cols):
    import geopandas as gpd

    geoms = [cell_box(5, 5), cell_box(200, 5), cell_box(8, 8), cell_box(5, 300)]
    gdf = gpd.GeoDataFrame({"name": ["in", "out", "in2", "out2"], **cols}, geometry=geoms, crs="EPSG:32633")
    if path.suffix == ".parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    return path


def _said(tmp_path, zones):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    with pytest.warns(UserWarning) as caught:
        zonal_embeddings(feats, zones, tmp_path / f"z_{zones.stem}.parquet")
    return [str(w.message) for w in caught if "no embedding" in str(w.message)]


@pytest.mark.parametrize(
    ("name", "cols", "ids"),
    [
        ("z.gpkg", {}, "first fids: 2, 4"),  # GeoPackage fids count from 1
        ("k.gpkg", {"fid": [10, 20, 30, 40]}, "first fids: 20, 40"),  # the file's own fids
        ("z.shp", {}, "first fids: 1, 3"),  # a Shapefile's count from 0, as QGIS shows them
    ],
)
def test_the_warning_names_the_layers_fids(tmp_path, name, cols, ids):
    said = _said(tmp_path, _zones(tmp_path / name, **cols))
    assert said == [f"{HEAD}{ids} (the layer's feature ids, as QGIS shows them)"]


def test_geoparquet_rows_are_named_as_0_based_rows(tmp_path):
    assert _said(tmp_path, _zones(tmp_path / "z.parquet")) == [f"{HEAD}first rows (0-based): 1, 3"]


def test_a_multi_layer_geopackage_names_the_fids_of_the_layer_read(tmp_path):
    import warnings

    import geopandas as gpd

    path = _zones(tmp_path / "m.gpkg", fid=[5, 6, 7, 8])
    other = gpd.GeoDataFrame({"name": ["x"]}, geometry=[cell_box(1, 1)], crs="EPSG:32633")
    other.to_file(path, layer="other")
    feats = feature_raster(tmp_path / "f.tif", stripes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zonal_embeddings(feats, path, tmp_path / "zm.parquet")
    said = [str(w.message) for w in caught]
    assert [m for m in said if "no embedding" in m] == [
        f"{HEAD}first fids: 6, 8 (the layer's feature ids, as QGIS shows them)"
    ]
    assert len(said) == 2 and "reading the first, 'm'" in said[0], said  # the first-layer note, nothing from pyogrio
