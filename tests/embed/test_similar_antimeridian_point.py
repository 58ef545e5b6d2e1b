"""A lon/lat feature raster across the antimeridian (x 179.5..180.5) refused `--point -179.8,9.5` (and the same
with --point-crs EPSG:4326) as lying outside it, though -179.8 and 180.2 are one place; it is now taken there."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import embed_raster, similarity_map
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif


@pytest.fixture
def across(tmp_path, conv_bb):
    src = write_tif(
        tmp_path / "am.tif", random_image(32, 32), crs="EPSG:4326", transform=from_origin(179.5, 10.0, 1 / 32, 1 / 32)
    )
    return embed_raster(src, conv_bb, tmp_path / "f.tif", tile=32, overlap=0, progress=False)


def _sim(features, out, **kw):
    similarity_map(features, out, **kw, overwrite=True)
    with rasterio.open(out) as ds:
        return ds.read(1)


def test_a_longitude_past_the_antimeridian_is_the_same_place(tmp_path, across):
    out = tmp_path / "s.tif"
    east = _sim(across, out, point=(180.2, 9.5))
    assert np.nanmax(east) == pytest.approx(1.0)
    for kw in ({}, {"point_crs": "EPSG:4326"}):
        np.testing.assert_array_equal(_sim(across, out, point=(-179.8, 9.5), **kw), east)
    with pytest.raises(InputError, match="lies outside the feature raster"):
        similarity_map(across, out, point=(-178.0, 9.5), overwrite=True)  # 182.0: past the raster's east edge


def test_polygons_and_labels_past_the_antimeridian_are_placed(tmp_path, across):
    """Zonal polygons, --polygon queries and classify labels at -179.8 were all outside the raster (x 179.5..180.5)."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point, box

    from geodino.embed import classify_map, zonal_embeddings

    zones = gpd.GeoDataFrame({"id": [1]}, geometry=[box(-179.9, 9.2, -179.6, 9.9)], crs="EPSG:4326")
    zones.to_file(tmp_path / "z.gpkg")
    zonal_embeddings(across, tmp_path / "z.gpkg", tmp_path / "z.parquet")
    assert pd.read_parquet(tmp_path / "z.parquet")["n_cells"].tolist() == [
        10
    ]  # cell centres: 2 columns x 5 rows of 1/8 degree
    shifted = gpd.GeoDataFrame({"id": [1]}, geometry=[box(180.1, 9.2, 180.4, 9.9)], crs="EPSG:4326")
    shifted.to_file(tmp_path / "z2.gpkg")
    zonal_embeddings(across, tmp_path / "z2.gpkg", tmp_path / "z2.parquet")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "z.parquet").drop(columns="geometry"),
        pd.read_parquet(tmp_path / "z2.parquet").drop(columns="geometry"),
    )
    similarity_map(across, tmp_path / "s.tif", polygon=tmp_path / "z.gpkg")
    lons = [179.6, 179.7, -179.9, -179.7]  # two labels either side of 180
    pts = [Point(x, y) for x in lons for y in (9.3, 9.7)]
    labels = gpd.GeoDataFrame({"c": ["w"] * 4 + ["e"] * 4}, geometry=pts, crs="EPSG:4326")
    labels.to_file(tmp_path / "l.gpkg")
    classify_map(across, tmp_path / "l.gpkg", tmp_path / "c.tif", column="c")  # was: "one class only ('w')"
    with rasterio.open(tmp_path / "c.tif") as ds:
        codes = ds.read(1)
    assert codes[2, 0] != codes[2, 4]  # the cells of a 'w' label (179.6, 9.7) and an 'e' one (-179.9 = 180.1, 9.7)
