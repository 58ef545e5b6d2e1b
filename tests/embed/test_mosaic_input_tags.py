"""The scene mosaic VRT carried the FIRST scene's GEODINO_INPUT_BOUNDS / _WINDOW (and input nodata) though it covers
every scene, so gdalinfo and QGIS showed wrong numbers: its bounds are now the union of the scenes' input bounds,
it records no single-scene window, and nodata/time only when the scenes agree. Products still place positions on
a mosaic's whole raster and on a single scene's own input bounds."""

from __future__ import annotations

import json

import numpy as np
from rasterio.transform import from_origin
from shapely.geometry import box

from geodino.data.vrt import mosaic_vrt
from geodino.embed.placement import input_footprint
from geodino.embed.writers import EmbeddingReader
from tests.embed.test_classify import TAGS, feature_raster

A = [500000.0, 3999880.0, 500150.0, 4000000.0]  # input bounds of scene a (its last partial cells reach past them)
B = [500200.0, 3999800.0, 500310.0, 3999920.0]


def scene(path, x0, y0, bounds, nodata="null", **more):
    tags = {
        **TAGS,
        "GEODINO_INPUT": str(path),
        "GEODINO_INPUT_WINDOW": "[0, 0, 15, 12]",
        "GEODINO_INPUT_NODATA": nodata,
    }
    tags |= {"GEODINO_INPUT_BOUNDS": json.dumps(bounds)} if bounds else {}
    tags |= more
    f = np.random.default_rng(0).normal(size=(2, 4, 4)).astype(np.float32)
    return feature_raster(path, f, tags=tags, transform=from_origin(x0, y0, 40.0, 40.0))


def vrt_tags(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.tags()


def test_mosaic_tags_are_the_union_of_its_scenes_and_readers_still_place(tmp_path):
    a = scene(tmp_path / "a.tif", 500000.0, 4000000.0, A, GEODINO_INPUT_TIME="2024-05-01")
    b = scene(tmp_path / "b.tif", 500200.0, 3999920.0, B, nodata="0.0", GEODINO_INPUT_TIME="2024-05-01")
    first = vrt_tags(a) | {"GEODINO_INPUT": "mosaic of 2 scenes"}  # what embed's scene run passes
    tags = vrt_tags(mosaic_vrt([a, b], tmp_path / "mosaic.vrt", metadata=first))
    assert json.loads(tags["GEODINO_INPUT_BOUNDS"]) == [500000.0, 3999800.0, 500310.0, 4000000.0]
    assert "GEODINO_INPUT_WINDOW" not in tags and "GEODINO_INPUT_NODATA" not in tags  # a's null, b's 0.0
    assert tags["GEODINO_INPUT_TIME"] == "2024-05-01" and tags["GEODINO_MODEL_FINGERPRINT"] == "abc123"
    with EmbeddingReader(tmp_path / "mosaic.vrt") as rd:  # placed on the whole mosaic, gaps between scenes too
        assert rd.metadata["input"] == "mosaic of 2 scenes" and input_footprint(rd) is None
    with EmbeddingReader(a) as rd:  # a single scene keeps its own input bounds and window
        assert input_footprint(rd).equals(box(*A)) and json.loads(rd.metadata["input_window"]) == [0, 0, 15, 12]
    # one scene without recorded bounds (written before they were): the mosaic claims none; same nodata is kept
    old = scene(tmp_path / "old.tif", 500200.0, 3999920.0, None)
    tags = vrt_tags(mosaic_vrt([a, old], tmp_path / "m2.vrt", metadata=first))
    assert "GEODINO_INPUT_BOUNDS" not in tags and tags["GEODINO_INPUT_NODATA"] == "null"
