"""`geodino data index --out F --valid` traces each raster's valid pixels (nodata / internal mask, read decimated)
instead of its grid's outline: on a GeoTIFF whose data is a right triangle the footprint's area is the triangle's
within the decimation tolerance, where the header outline is the whole square (twice the area)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from geodino import cli
from geodino.data.archive import RasterArchive
from geodino.data.valid_footprint import valid_footprint

from .conftest import write_tif

N = 400  # pixels a side, 10 m pixels: the triangle's legs are 4 km
TRIANGLE_M2 = 0.5 * (N * 10.0) ** 2


def _triangle(tmp_path, nodata=0, masked=False):
    rows, cols = np.mgrid[:N, :N]
    inside = cols <= rows  # lower-left triangle (pixel centres on or below the diagonal)
    data = np.where(inside, 100, 0 if not masked else 7).astype("uint16")[None].repeat(2, 0)
    path = write_tif(tmp_path / "tri.tif", data, nodata=nodata)
    if masked:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
            ds.write_mask(np.where(inside, 255, 0).astype("uint8"))
    return path, inside


def read_scene_info(path: str):
    """The indexed scene of one raster, as `geodino data index` gets it."""
    return RasterArchive(path, uniform=False, require_crs=False, progress=False).scenes[0]


def _utm_area(path_or_gdf) -> float:
    gdf = gpd.read_file(path_or_gdf) if not isinstance(path_or_gdf, gpd.GeoDataFrame) else path_or_gdf
    return float(gdf.to_crs("EPSG:32633").geometry.area.sum())


def test_valid_footprint_of_a_triangle_has_the_triangle_area(tmp_path, capsys):
    path, inside = _triangle(tmp_path)
    valid = tmp_path / "valid.geojson"
    header = tmp_path / "header.geojson"
    assert cli.main(["data", "index", str(path), "--out", str(valid), "--valid"]) == 0
    assert cli.main(["data", "index", str(path), "--out", str(header)]) == 0
    pixels = inside.sum() * 100.0  # the pixelised triangle, m2 (a half pixel row above the true one)
    area = _utm_area(valid)
    assert abs(area - pixels) / pixels < 0.01
    assert abs(area - TRIANGLE_M2) / TRIANGLE_M2 < 0.01
    assert abs(_utm_area(header) - 2 * TRIANGLE_M2) / TRIANGLE_M2 < 0.01  # the grid's square: twice as much


@pytest.mark.parametrize("max_side", [50, 100])
def test_decimated_read_stays_within_one_read_pixel(tmp_path, max_side):
    path, _ = _triangle(tmp_path)
    geom, why = valid_footprint(read_scene_info(str(path)), "EPSG:32633", max_side=max_side)
    assert why == ""
    read_pixel = N * 10.0 / max_side  # metres
    perimeter = (2 + np.sqrt(2)) * N * 10.0
    assert abs(geom.area - TRIANGLE_M2) <= read_pixel * perimeter  # within a read pixel of every edge
    assert abs(geom.area - TRIANGLE_M2) / TRIANGLE_M2 < 0.1
    assert len(geom.exterior.coords) < 200  # simplified: the staircase is not kept pixel by pixel


def test_an_internal_mask_is_traced_too(tmp_path):
    path, _ = _triangle(tmp_path, nodata=None, masked=True)
    geom, why = valid_footprint(read_scene_info(str(path)), "EPSG:32633", max_side=100)
    assert why == "" and abs(geom.area - TRIANGLE_M2) / TRIANGLE_M2 < 0.05


def test_all_nodata_and_valid_without_out_are_one_line(tmp_path, capsys):
    path = write_tif(tmp_path / "empty.tif", np.zeros((1, 20, 20), "uint16"), nodata=0)
    geom, why = valid_footprint(read_scene_info(str(path)))
    assert geom is None and "no valid pixel" in why
    out = tmp_path / "x.geojson"
    with pytest.warns(UserWarning, match="no valid pixel"):
        assert cli.main(["data", "index", str(path), "--out", str(out), "--valid"]) != 0
    err = capsys.readouterr().err.strip()
    assert "cannot be traced" in err and "\n" not in err and not out.exists()
    assert cli.main(["data", "index", str(path), "--valid"]) != 0
    assert "--valid traces the footprints --out writes" in capsys.readouterr().err


def test_stray_pixels_are_left_out_and_real_holes_kept(tmp_path):
    """A lone valid pixel off the data and a lone nodata pixel in it are specks, not coverage; a 20 x 20 px gap
    is a hole of the footprint."""
    rows, cols = np.mgrid[:N, :N]
    data = np.where(cols <= rows, 100, 0).astype("uint16")
    data[10, 300] = 100  # an island of one pixel in the nodata half
    data[300, 100] = 0  # a hole of one pixel in the data
    data[200:220, 20:40] = 0  # a real gap: 20 x 20 pixels
    path = write_tif(tmp_path / "specks.tif", data[None], nodata=0)
    geom, why = valid_footprint(read_scene_info(str(path)), "EPSG:32633")
    assert why == "" and geom.geom_type == "Polygon"
    (hole,) = geom.interiors
    assert abs(shapely.Polygon(hole).area - 400 * 100.0) < 1.0
