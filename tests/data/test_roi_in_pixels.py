"""`geodino.data.tiling.roi_in_pixels`: the one ROI-to-pixels rule the training tiler and `geodino embed --bbox`
share (it was TileSampler's private method, called from embed/extent.py)."""

from __future__ import annotations

import pytest

from tests.helpers import scene_info

shapely = pytest.importorskip("shapely")
pytest.importorskip("rasterio")


def _scene():
    return scene_info("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 100, 80)


def test_roi_in_pixels_maps_clips_and_reprojects():
    from rasterio.warp import transform_bounds

    from geodino.data.tiling import roi_in_pixels

    s = _scene()
    # map box x 500200..500400, y 4999500..4999700 -> cols 20..40, rows 30..50
    px = roi_in_pixels(shapely.box(500200, 4999500, 500400, 4999700), s.affine, s.width, s.height)
    assert px.bounds == pytest.approx((20, 30, 40, 50))
    # clipped to the raster; a box outside is empty
    px = roi_in_pixels(shapely.box(499000, 4999500, 500100, 4999700), s.affine, s.width, s.height)
    assert px.bounds == pytest.approx((0, 30, 10, 50))
    assert roi_in_pixels(shapely.box(0, 0, 1, 1), s.affine, s.width, s.height).is_empty
    # in another CRS: reprojected first (the same area in lon/lat lands on the same pixels, to a fraction)
    ll = transform_bounds("EPSG:32633", "EPSG:4326", 500200, 4999500, 500400, 4999700)
    px = roi_in_pixels(shapely.box(*ll), s.affine, s.width, s.height, roi_crs="EPSG:4326", crs=s.crs)
    assert px.bounds == pytest.approx((20, 30, 40, 50), abs=0.2)
    # without a CRS on either side the ROI is taken as the raster's own coordinates
    px = roi_in_pixels(shapely.box(500200, 4999500, 500400, 4999700), s.affine, 100, 80, roi_crs="EPSG:4326")
    assert px.bounds == pytest.approx((20, 30, 40, 50))


def test_the_tiler_and_embed_bbox_use_it():
    from geodino.data.tiling import TileSampler, roi_in_pixels
    from geodino.embed.extent import _bbox_pixels

    s = _scene()
    roi = shapely.box(500200, 4999500, 500400, 4999700)
    region = TileSampler([s], 8, roi=roi, roi_crs="EPSG:32633").roi_px[0]
    assert region.equals(roi_in_pixels(roi, s.affine, s.width, s.height, roi_crs="EPSG:32633", crs=s.crs))
    assert _bbox_pixels(roi.bounds, None, s.crs, s.affine, s.width, s.height).equals(region)
    assert not hasattr(TileSampler, "_roi_in_pixels")  # one home, not two copies
