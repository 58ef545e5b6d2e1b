"""Scenes whose cells do not line up with the first scene's were shown in the mosaic VRT shifted by the fraction of a
cell their origin is off (two SJER halves, 200 px wide at patch 16: the second half a cell, 0.8 m, west of its own
COG), without a word. The mosaic now says so, naming the scene and the shift; scenes on one grid stay silent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed.scene_mosaic import write_mosaic
from tests.embed.test_classify import TAGS


def scene(path, west, north=4000.0, res=1.6):
    """A 2-band 4 x 4 float feature raster of 1.6 m cells, tagged like `geodino embed`'s."""
    with rasterio.open(
        path, "w", driver="GTiff", height=4, width=4, count=2, dtype="float32", crs="EPSG:32611", nodata=np.nan,
        transform=from_origin(west, north, res, res),
    ) as dst:  # fmt: skip
        dst.write(np.ones((2, 4, 4), np.float32))
        dst.update_tags(**TAGS, GEODINO_INPUT=str(path))
    return path


def test_a_scene_off_the_first_scenes_cell_grid_is_named(tmp_path):
    a = scene(tmp_path / "a.tif", 1000.0)
    b = scene(tmp_path / "b.tif", 1000.0 + 4 * 1.6 + 0.8)  # half a cell east of a's grid
    with pytest.warns(
        UserWarning, match=r"1 scene \(b\.tif\) lies off the cell grid of a\.tif.*0\.5 x 0 cells \(0\.8 x 0"
    ):
        (mosaic,) = write_mosaic([a, b], tmp_path / "mosaic.vrt")
    assert mosaic.exists()


def test_scenes_on_one_grid_mosaic_silently(tmp_path):
    a = scene(tmp_path / "a.tif", 1000.0)
    b = scene(tmp_path / "b.tif", 1000.0 + 3 * 1.6, north=4000.0 - 2 * 1.6)  # whole cells away, overlapping
    c = scene(tmp_path / "c.tif", 1000.0 + 0.8, res=0.8)  # a finer grid: resampled anyway, not this warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_mosaic([a, b, c], tmp_path / "mosaic.vrt")
