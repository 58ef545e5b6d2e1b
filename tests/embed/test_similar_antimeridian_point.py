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
