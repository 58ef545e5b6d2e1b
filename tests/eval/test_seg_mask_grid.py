"""A georeferenced segmentation mask must cover the same ground as its image: masks are paired by pixel index.

Before: a mask GeoTIFF of the image's size but in another CRS or shifted grid was accepted silently, and its labels
trained and scored the wrong pixels. Now it is refused in one line naming both files; a mask on the same grid (within
half a pixel) and a PNG mask (no georeference) are still read.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from geodino.errors import InputError
from geodino.eval.segmentation import SegmentationProbeConfig
from geodino.eval.segmentation_data import load_pair

ORIGIN = (300000.0, 4000000.0)


def _tif(path, data, crs="EPSG:32611", origin=ORIGIN, res=1.0):
    c, h, w = data.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": c, "dtype": data.dtype, "crs": crs}
    with rasterio.open(path, "w", transform=from_origin(*origin, res, res), **profile) as dst:
        dst.write(data)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.tif"
    _tif(path, np.full((3, 16, 16), 100, np.uint8))
    return path


def _mask(tmp_path, **grid):
    path = tmp_path / "a_mask.tif"
    _tif(path, np.ones((1, 16, 16), np.uint8), **grid)
    return path


def test_a_mask_on_the_image_grid_is_read(tmp_path, image):
    cfg = SegmentationProbeConfig(num_classes=2)
    sample = load_pair(image, _mask(tmp_path, origin=(ORIGIN[0] + 0.3, ORIGIN[1])), cfg)  # within half a pixel
    assert int(sample["mask"].sum()) == 16 * 16
    png = tmp_path / "b_mask.png"
    Image.fromarray(np.ones((16, 16), np.uint8)).save(png)
    assert int(load_pair(image, png, cfg)["mask"].sum()) == 16 * 16


@pytest.mark.parametrize(
    "grid",
    [{"crs": "EPSG:32618"}, {"origin": (ORIGIN[0] + 4, ORIGIN[1])}, {"res": 2.0}],
    ids=["other-crs", "shifted", "other-pixel-size"],
)
def test_a_mask_on_another_grid_is_refused(tmp_path, image, grid):
    mask = _mask(tmp_path, **grid)
    with pytest.raises(InputError, match="covers other ground than image") as err:
        load_pair(image, mask, SegmentationProbeConfig(num_classes=2))
    assert str(mask) in str(err.value) and str(image) in str(err.value) and "\n" not in str(err.value)
