"""`geodino.data.footprints.footprint` (the archive index, `embed images` GeoParquet footprints and STAC items all
use it) cuts a lon/lat footprint at the antimeridian by hand where GDAL's cut fails: EPSG:3857 past x = 20037508 m
gave one invalid polygon spanning the globe, EPSG:3413 across 180 E a valid band round the whole globe."""

from __future__ import annotations

import pytest
from rasterio.transform import from_origin

from geodino.data.footprints import footprint
from geodino.data.rasters import SceneInfo
from tests.helpers import scene_info

EDGE = 20037508.342789244  # EPSG:3857's x at longitude 180


def _scene(crs: str, transform, size: int = 64) -> SceneInfo:
    return scene_info(crs, transform, size, size, path="x.tif", band_names=(), count=1)


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:3857", from_origin(EDGE - 64000.0, 64000.0, 2000.0, 2000.0)),
        ("EPSG:3413", from_origin(-1155327.0 - 64000.0, 1155327.0 + 64000.0, 2000.0, 2000.0)),
    ],
)
def test_a_grid_across_the_antimeridian_is_split_into_a_small_multipolygon(crs, transform):
    geom, why = footprint(_scene(crs, transform))
    assert why == "" and geom.is_valid and geom.geom_type == "MultiPolygon"
    assert geom.area < 20.0  # a few square degrees, not a band round the globe
    east_part, west_part = sorted(geom.geoms, key=lambda p: -p.bounds[0])
    assert 170.0 < east_part.bounds[0] and east_part.bounds[2] == pytest.approx(180.0)
    assert west_part.bounds[0] == pytest.approx(-180.0) and west_part.bounds[2] < -170.0


def test_an_ordinary_grid_keeps_gdals_footprint():
    scene = _scene("EPSG:32633", from_origin(500000.0, 5000000.0, 30.0, 30.0))
    geom, _ = footprint(scene)
    assert geom.geom_type == "Polygon" and geom.is_valid
    x0, y0, x1, y1 = geom.bounds
    assert 14.9 < x0 < x1 < 15.1 and 45.1 < y0 < y1 < 45.2


def test_a_grid_round_the_pole_still_reaches_it():
    geom, _ = footprint(_scene("EPSG:3031", from_origin(-64000.0, 64000.0, 2000.0, 2000.0)))
    assert geom.is_valid and geom.bounds[1] == pytest.approx(-90.0)
