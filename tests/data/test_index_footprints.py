"""`data index --out` footprints: true outlines of rotated grids, split at the antimeridian (RFC 7946), and rasters
with no place on the map (no CRS, a LOCAL_CS one) left out with a warning naming them instead of a traceback or a
footprint in metres written as degrees."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from affine import Affine
from shapely import affinity

from geodino import cli
from tests import helpers
from tests.test_bad_inputs import one_line_exit_2

LOCAL_CS = 'LOCAL_CS["Arbitrary",UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'


def _tif(path, crs, transform, h=20, w=30):
    from rasterio.crs import CRS

    path.parent.mkdir(parents=True, exist_ok=True)
    crs = CRS.from_wkt(crs) if crs and crs.startswith("LOCAL_CS") else crs
    return helpers.write_tif(path, np.ones((1, h, w), np.uint8), crs=crs, transform=transform)


def _features(path) -> dict[str, dict]:
    doc = json.loads(path.read_text())
    return {f["properties"]["filepath"].rsplit("/", 1)[-1]: f["geometry"] for f in doc["features"]}


def _to_lonlat(crs: str, xy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    from pyproj import Transformer

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return [tr.transform(x, y) for x, y in xy]


@pytest.mark.parametrize(
    ("name", "crs", "why"),
    [
        ("local", LOCAL_CS, 'its CRS "Arbitrary" is a local (engineering) CRS, which has no place on the map'),
        ("nocrs", None, "it has no CRS, so it cannot be placed on the map"),  # was written in metres as degrees
    ],
    ids=["local_cs", "no_crs"],
)
def test_an_unplaceable_raster_is_left_out_with_a_warning(tmp_path, capsys, name, crs, why):
    root = tmp_path / "arch"
    _tif(root / "ok.tif", "EPSG:32633", Affine(10, 0, 500000, 0, -10, 4000000))
    _tif(root / f"{name}.tif", crs, Affine(10, 0, 501920, 0, -10, 3998080))
    out = tmp_path / "idx.geojson"
    with pytest.warns(UserWarning) as seen:
        assert cli.main(["data", "index", str(root), "--out", str(out)]) == 0
    said = [str(w.message) for w in seen if "left out of the footprints" in str(w.message)]
    assert said == [f"{root / name}.tif left out of the footprints: {why}" + (" (assign one: gdal_edit.py -a_srs "
                    "EPSG:... FILE)" if crs is None else "")]  # fmt: skip
    captured = capsys.readouterr()
    assert "2 scenes," in captured.out and "(1 raster left out: no place on the map)" in captured.out
    feats = _features(out)
    assert list(feats) == ["ok.tif"]
    lon, lat = np.array(feats["ok.tif"]["coordinates"][0]).T
    assert (abs(lon - 15) < 0.01).all() and (abs(lat - 36.14) < 0.01).all()


def test_nothing_to_place_is_one_line_and_writes_nothing(tmp_path, capsys):
    src = _tif(tmp_path / "arch" / "local.tif", LOCAL_CS, Affine(1, 0, 0, 0, -1, 1000))
    with pytest.warns(UserWarning, match="local.tif left out of the footprints"):
        one_line_exit_2(
            capsys,
            tmp_path,
            "data", "index", src, "--out", tmp_path / "idx.geojson",
            expect=(f"raster {src} cannot be placed on the map", "idx.geojson would hold no footprint"),
        )  # fmt: skip


def test_a_rotated_raster_gets_its_true_outline(tmp_path):
    t = Affine.translation(500000, 4000000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    _tif(tmp_path / "arch" / "rot.tif", "EPSG:32633", t, h=200, w=300)
    out = tmp_path / "idx.geojson"
    assert cli.main(["data", "index", str(tmp_path / "arch"), "--out", str(out)]) == 0
    geom = shapely.geometry.shape(_features(out)["rot.tif"])
    corners = _to_lonlat("EPSG:32633", [t * c for c in [(0, 0), (300, 0), (300, 200), (0, 200)]])
    truth = shapely.Polygon(corners)
    # an axis-aligned box of the rotated grid covers 1.6x its area; the outline matches the quadrilateral
    assert geom.symmetric_difference(truth).area < 1e-3 * truth.area
    coords = shapely.get_coordinates(geom)
    assert len(coords) == 4 * 20 + 1  # densified: 21 points per edge, as GDAL densifies bounds
    for c in corners:
        assert np.hypot(*(coords - c).T).min() < 1e-6
    assert shapely.Polygon(coords).exterior.is_ccw  # RFC 7946: counter-clockwise exterior
    assert "crs" not in json.loads(out.read_text())  # RFC 7946 has no crs member: always lon/lat


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        # UTM 60N, 700-760 km east: across 180 E (GDAL's antimeridian cutting split this one already)
        ("EPSG:32660", Affine(1000, 0, 700000, 0, -1000, 5000000)),
        ("EPSG:4326", Affine(0.05, 0, 179.5, 0, -0.05, 11)),  # lon/lat stored past 180 (179.5 .. 180.5)
    ],
    ids=["utm60", "lonlat-past-180"],
)
def test_an_antimeridian_footprint_is_split_into_valid_lon_lat(tmp_path, crs, transform):
    h, w = (10, 60) if crs == "EPSG:32660" else (20, 20)
    _tif(tmp_path / "arch" / "anti.tif", crs, transform, h=h, w=w)
    out = tmp_path / "idx.geojson"
    assert cli.main(["data", "index", str(tmp_path / "arch"), "--out", str(out)]) == 0
    geom = shapely.geometry.shape(_features(out)["anti.tif"])
    lon = shapely.get_coordinates(geom)[:, 0]
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2 and geom.is_valid
    assert lon.min() >= -180 and lon.max() <= 180  # the auditor's footprint reached 180.44
    east, west = sorted(geom.geoms, key=lambda g: -g.centroid.x)
    assert east.bounds[2] == pytest.approx(180) and west.bounds[0] == pytest.approx(-180)
    # the two parts together are the raster: shifted back east of 180, they cover its outline
    corners = [transform * c for c in [(0, 0), (w, 0), (w, h), (0, h)]]
    lonlat = _to_lonlat(crs, corners) if crs != "EPSG:4326" else corners
    whole = shapely.Polygon([(x % 360, y) for x, y in lonlat])  # PROJ gives -179.7 for 180.3
    joined = shapely.union(east, affinity.translate(west, xoff=360))
    assert joined.symmetric_difference(whole).area < 1e-2 * whole.area
