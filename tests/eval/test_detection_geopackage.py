"""The detection probe writes the boxes of a georeferenced image as a GeoPackage beside the GeoJSON: the raster's
CRS stored with them (RFC 7946 readers ignore the GeoJSON `crs` member of a projected CRS), the same polygons."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geodino.eval import dense
from geodino.eval.detection_outputs import write_predictions

LAEA = CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")


def _raster(tmp_path, crs):
    return dense.Raster(np.zeros((3, 100, 100), np.uint8), np.ones((100, 100), bool), tmp_path / "scene.tif", crs,
                        from_origin(4321000.0, 3210000.0, 0.5, 0.5))  # fmt: skip


@pytest.mark.parametrize("crs", [CRS.from_epsg(32617), LAEA], ids=["epsg", "custom"])
def test_geopackage_has_the_raster_crs_and_the_geojson_coordinates(tmp_path, crs):
    import geopandas as gpd
    import pyogrio

    pred = {
        "boxes": torch.tensor([[10.0, 20.0, 30.0, 50.0], [60.0, 5.0, 70.0, 9.0], [0.0, 0.0, 4.0, 4.0]]),
        "scores": torch.tensor([0.9, 0.5, 0.1]),
        "labels": torch.tensor([0, 1, 0]),
    }
    geojson = write_predictions(pred, _raster(tmp_path, crs), ["tree", "snag"], 0.3, tmp_path)
    gpkg = tmp_path / "scene_boxes.gpkg"
    assert gpkg.is_file()
    assert pyogrio.list_layers(gpkg)[:, 0].tolist() == ["boxes"]
    g = gpd.read_file(gpkg, layer="boxes")
    assert g.crs is not None and CRS.from_user_input(g.crs.to_wkt()) == crs
    fc = json.loads(geojson.read_text())
    assert len(g) == len(fc["features"]) == 2  # the 0.1 score is under the export threshold
    for row, f in zip(g.itertuples(), fc["features"]):
        ring = np.asarray(f["geometry"]["coordinates"][0])
        assert np.asarray(row.geometry.exterior.coords) == pytest.approx(ring)
        assert row.label == f["properties"]["label"] and row.score == pytest.approx(f["properties"]["score"])
        assert (row.xmin, row.ymax) == (f["properties"]["xmin"], f["properties"]["ymax"])
    assert g.total_bounds[[0, 2]] == pytest.approx([4321005.0, 4321035.0])  # metres, not degrees
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]  # written under a temporary name, renamed


def test_image_without_boxes_gets_an_empty_layer(tmp_path):
    import geopandas as gpd

    empty = {"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
    write_predictions(empty, _raster(tmp_path, CRS.from_epsg(32617)), ["tree"], 0.3, tmp_path)
    g = gpd.read_file(tmp_path / "scene_boxes.gpkg")
    assert len(g) == 0 and g.crs.to_epsg() == 32617


def test_pixel_only_image_gets_no_geopackage(tmp_path):
    r = dense.Raster(np.zeros((3, 10, 10), np.uint8), np.ones((10, 10), bool), tmp_path / "plain.png")
    pred = {"boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
    write_predictions(pred, r, ["tree"], 0.3, tmp_path)
    assert (tmp_path / "plain_boxes.json").is_file() and not (tmp_path / "plain_boxes.gpkg").exists()
