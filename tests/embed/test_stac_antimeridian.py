"""The STAC item of a feature raster that crosses the antimeridian has a valid lon/lat footprint: a MultiPolygon
split at +-180 and a bbox running west > east (RFC 7946), for grids GDAL's own antimeridian cut gets wrong (EPSG:3857
past x = 20037508 m gave one invalid polygon spanning the globe) as well as for those it gets right; a polar grid's
footprint keeps the pole."""

from __future__ import annotations

import json

import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_raster
from tests.embed.conftest import random_image, write_tif

EDGE = 20037508.342789244  # EPSG:3857's x at longitude 180


def _item(tmp_path, bb, crs: str, transform) -> dict:
    src = write_tif(tmp_path / "in.tif", random_image(64, 64), crs=crs, transform=transform)
    embed_raster(src, bb, tmp_path / "f.tif", tile=32, overlap=8, progress=False)
    return json.loads((tmp_path / "f.stac.json").read_text())


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:3857", from_origin(EDGE - 64000.0, 64000.0, 2000.0, 2000.0)),  # GDAL's cut fails here
        ("EPSG:3857", from_origin(-EDGE - 64000.0, 64000.0, 2000.0, 2000.0)),
        ("EPSG:32601", from_origin(300000.0, 6700000.0, 2000.0, 2000.0)),  # UTM zone 1 at 60 N reaches past 180
        # EPSG:3413 (lon_0 -45) at 180 E, 75 N: GDAL's cut gave a valid band round the globe (bbox -180..179.8)
        ("EPSG:3413", from_origin(-1155327.0 - 64000.0, 1155327.0 + 64000.0, 2000.0, 2000.0)),
        ("EPSG:3031", from_origin(-64000.0, -1638783.0 + 64000.0, 2000.0, 2000.0)),  # 180 E, 75 S
    ],
)
def test_a_raster_across_the_antimeridian_gets_a_split_footprint_and_a_west_gt_east_bbox(
    tmp_path, conv_bb, crs, transform
):
    import shapely
    from pyproj import Transformer

    item = _item(tmp_path, conv_bb, crs, transform)
    geom = shapely.geometry.shape(item["geometry"])
    assert geom.is_valid and geom.geom_type == "MultiPolygon"
    west, south, east, north = item["bbox"]
    assert 170.0 < west < 180.0 and -180.0 < east < -170.0  # not -180..180
    to = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x0, y0 = transform * (0, 0)
    x1, y1 = transform * (64, 64)
    corners = [to.transform(x, y) for x in (x0, x1) for y in (y0, y1)]
    span = sum((b[2] - b[0]) for b in (p.bounds for p in geom.geoms))
    assert span < 10.0 and geom.area < 20.0  # a few degrees wide, not the whole globe
    for lon, lat in corners:
        assert south - 1e-9 <= lat <= north + 1e-9
        assert lon >= west - 1e-9 or lon <= east + 1e-9
        assert geom.buffer(1e-7).contains(shapely.Point(lon, lat))


def test_a_polar_grid_around_the_pole_keeps_the_pole_in_its_footprint(tmp_path, conv_bb):
    import shapely

    item = _item(tmp_path, conv_bb, "EPSG:3413", from_origin(-64000.0, 64000.0, 2000.0, 2000.0))
    geom = shapely.geometry.shape(item["geometry"])
    assert geom.is_valid
    assert item["bbox"][3] == pytest.approx(90.0) and item["bbox"][0] == -180.0 and item["bbox"][2] == 180.0
    assert geom.buffer(1e-7).contains(shapely.Point(0.0, 89.99))
