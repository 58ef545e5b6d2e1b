"""A feature raster embedded with --allow-no-crs (pixel coordinates) could take no polygons or labels: a file
without a CRS was refused ("have no CRS; set one"), and one with a CRS could not be placed on the raster. Vectors
without a CRS are now placed in the raster's own coordinates (zonal, similar --polygon, classify labels: all through
`placement.to_raster_crs`); either side alone without a CRS is still refused."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from geodino.embed import embed_raster, similarity_map, zonal_embeddings
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif


def _save(tmp_path, name, geoms, crs=None, **cols):
    path = tmp_path / name
    with pytest.warns(UserWarning, match="crs"):  # pyogrio says a file without a CRS is written so
        gpd.GeoDataFrame(cols or {"id": list(range(1, len(geoms) + 1))}, geometry=geoms, crs=crs).to_file(path)
    return path


def test_vectors_without_a_crs_go_on_a_raster_without_one(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 40), crs=None)  # 10 m pixels from (500000, 4000000)
    out = embed_raster(src, conv_bb, tmp_path / "f.tif", tile=32, overlap=0, progress=False, allow_no_crs=True)
    zones = _save(tmp_path, "z.gpkg", [box(500000, 3999840, 500160, 4000000), box(500240, 3999680, 500400, 3999920)])
    zonal_embeddings(out, zones, tmp_path / "z.parquet")
    assert pd.read_parquet(tmp_path / "z.parquet")["n_cells"].tolist() == [16, 24]  # 40 m cells: 4 x 4, 4 x 6
    similarity_map(out, tmp_path / "s.tif", polygon=zones)
    with pytest.raises(InputError, match=r"has no CRS, so polygons in EPSG:32633 cannot be placed on it; give them "):
        gpd.GeoDataFrame({"id": [1]}, geometry=[box(500000, 3999840, 500160, 4000000)], crs="EPSG:32633").to_file(
            tmp_path / "u.gpkg"
        )
        zonal_embeddings(out, tmp_path / "u.gpkg", tmp_path / "u.parquet")


def test_vectors_without_a_crs_on_a_raster_with_one_are_refused(tmp_path, conv_bb):
    out = embed_raster(write_tif(tmp_path / "in.tif", random_image(32, 32)), conv_bb, tmp_path / "f.tif", tile=32,
                       overlap=0, progress=False)  # fmt: skip
    zones = _save(tmp_path, "z.gpkg", [box(500000, 3999800, 500100, 4000000)])
    with pytest.raises(InputError, match=r"polygons in .*z\.gpkg have no CRS; set one"):
        zonal_embeddings(out, zones, tmp_path / "z.parquet")
