"""A lon/lat bbox across the antimeridian written west > east (--bbox 179.8 9.2 -179.8 9.9 --bbox-crs EPSG:4326)
was refused with the hint `--bbox -179.8 9.2 179.8 9.9`: a bbox around the rest of the globe. The hint now gives
the east edge past 180, and that bbox embeds the part of a raster across the antimeridian it names."""

from __future__ import annotations

import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import embed_raster
from geodino.errors import ConfigError
from tests.embed.conftest import random_image, write_tif


def test_a_bbox_across_the_antimeridian_is_hinted_east_past_180(tmp_path, conv_bb):
    src = write_tif(
        tmp_path / "am.tif", random_image(32, 32), crs="EPSG:4326", transform=from_origin(179.5, 10.0, 1 / 32, 1 / 32)
    )
    opts = dict(tile=32, overlap=0, progress=False, bbox_crs="EPSG:4326")
    with pytest.raises(ConfigError, match=r"e\.g\. --bbox 179\.8 9\.2 180\.2 9\.9 \(across the antimeridian"):
        embed_raster(src, conv_bb, tmp_path / "f.tif", bbox=(179.8, 9.2, -179.8, 9.9), **opts)
    out = embed_raster(src, conv_bb, tmp_path / "f.tif", bbox=(179.8, 9.2, 180.2, 9.9), **opts)
    with rasterio.open(out) as ds:
        left, _, right, _ = ds.bounds
    assert left <= 179.8 < 180.2 <= right and right - left < 0.6  # that part, not the raster's whole 1 degree
    with pytest.raises(ConfigError, match=r"e\.g\. --bbox 1 2 3 4 \(bbox= in Python\)$"):  # other CRSs: as before
        embed_raster(src, conv_bb, tmp_path / "g.tif", bbox=(3, 2, 1, 4), tile=32, overlap=0, progress=False)
