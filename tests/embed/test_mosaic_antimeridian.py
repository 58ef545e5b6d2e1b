"""Lon/lat scenes at 179.9 and -179.9 degrees made a mosaic over -180..180 (about 36,000 columns of 0.01 degrees for
two scenes of 4, the rest empty). Those west of the antimeridian are now placed east past 180: one mosaic of 20
columns, one warning naming both sides' longitudes, input bounds moved alike, and a -179.92 point still finds its
cell. Scenes spread over the world, or in a projected CRS, keep their places."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data.mosaic_antimeridian import antimeridian_shifts
from geodino.embed.placement import point_cell
from geodino.embed.scene_mosaic import write_mosaic
from geodino.embed.writers import EmbeddingReader
from tests.embed.test_classify import TAGS

RES = 0.01


def lonlat_scene(path, west, value, crs="EPSG:4326"):
    """A 2-band 4 x 4 float feature raster at longitude `west`, latitude 0.1 down, tagged like `geodino embed`'s."""
    bounds = [west, 0.06, west + 4 * RES, 0.1]
    with rasterio.open(
        path, "w", driver="GTiff", height=4, width=4, count=2, dtype="float32", crs=crs, nodata=np.nan,
        transform=from_origin(west, 0.1, RES, RES),
    ) as dst:  # fmt: skip
        dst.write(np.full((2, 4, 4), value, np.float32))
        dst.update_tags(**TAGS, GEODINO_INPUT=str(path), GEODINO_INPUT_BOUNDS=json.dumps(bounds))
    return path


def test_scenes_across_the_antimeridian_make_one_narrow_mosaic(tmp_path):
    east = lonlat_scene(tmp_path / "east.tif", 179.9, 1.0)
    west = lonlat_scene(tmp_path / "west.tif", -179.94, 2.0)
    with pytest.warns(UserWarning, match=r"antimeridian \(1 scene at longitudes 179\.9\.\.179\.94, 1 at -179\.94"):
        (mosaic,) = write_mosaic([east, west], tmp_path / "mosaic.vrt")
    assert mosaic.name == "mosaic.vrt"
    with rasterio.open(mosaic) as m:
        assert (m.width, m.height) == (20, 4)
        assert m.bounds.left == pytest.approx(179.9) and m.bounds.right == pytest.approx(180.1)
        row = m.read(1)[0]
        assert (row[:4] == 1).all() and np.isnan(row[4:16]).all() and (row[16:] == 2).all()
        assert json.loads(m.tags()["GEODINO_INPUT_BOUNDS"]) == pytest.approx([179.9, 0.06, 180.1, 0.1])
    with EmbeddingReader(mosaic) as rd:  # a point given at its own longitude finds the western scene's cell
        assert point_cell(rd, (-179.925, 0.085), "EPSG:4326") == (1, 17)
    with rasterio.open(west) as src:  # the scene's own raster keeps its longitudes
        assert src.bounds.left == pytest.approx(-179.94)


def test_scenes_spread_over_the_world_or_projected_keep_their_longitudes(tmp_path, recwarn):
    from rasterio.crs import CRS

    lonlat = CRS.from_epsg(4326)
    assert antimeridian_shifts(lonlat, [(-170, -169), (0, 1), (170, 171)]) is None  # moved: still 190 degrees
    assert antimeridian_shifts(lonlat, [(-180.5, -179.5), (179.6, 179.9)]) == [360.0, 0.0]
    assert antimeridian_shifts(lonlat, [(10, 11), (12, 13)]) is None
    assert antimeridian_shifts(CRS.from_epsg(32601), [(-170, -169), (170, 171)]) is None  # metres: no wrap
    paths = [lonlat_scene(tmp_path / f"{k}.tif", x, 1.0) for k, x in enumerate((-170.0, 0.0, 170.0))]
    (mosaic,) = write_mosaic(paths, tmp_path / "mosaic.vrt")
    with rasterio.open(mosaic) as m:
        assert m.bounds.left == pytest.approx(-170.0) and m.bounds.right == pytest.approx(170.04)
    assert not [w for w in recwarn if "antimeridian" in str(w.message)]
