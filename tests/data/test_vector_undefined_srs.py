"""A GeoPackage without a CRS (srs_id 0 or -1) read by GDAL 3.8 (the pyogrio bound's wheels) came back with a CRS
named "Undefined geographic SRS": embed then refused to place polygons on a raster without a CRS, and on a raster
with one reported them outside it instead of saying they have no CRS. Such a CRS is read as none."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geodino.data import vectors
from geodino.errors import InputError

UNDEFINED = (
    'GEOGCRS["Undefined geographic SRS",DATUM["unknown",ELLIPSOID["unknown",6378137,298.257223563]],'
    'CS[ellipsoidal,2],AXIS["latitude",north,ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["longitude",east,ANGLEUNIT["degree",0.0174532925199433]]]'
)


def test_a_geopackage_undefined_srs_reads_as_no_crs(tmp_path, monkeypatch):
    gdf = gpd.GeoDataFrame({"v": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=UNDEFINED)
    assert gdf.crs.name == "Undefined geographic SRS"  # what GDAL 3.8 hands over
    monkeypatch.setattr(gpd, "read_file", lambda *a, **k: gdf.copy())
    (tmp_path / "z.gpkg").write_bytes(b"")
    assert vectors.read_vector(tmp_path / "z.gpkg", require_crs=False).crs is None
    with pytest.raises(InputError, match=r"polygons in .*z\.gpkg have no CRS; set one"):
        vectors.read_vector(tmp_path / "z.gpkg")


def test_a_real_crs_is_kept(tmp_path):
    path = tmp_path / "p.gpkg"
    gpd.GeoDataFrame({"v": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:32633").to_file(path)
    assert vectors.read_vector(path).crs.to_epsg() == 32633
