"""GeoTIFFs named `.gtif`/`.gtiff` (rasters to geodino.data since 684c00d) are images to the probes and to `embed
images` too: found in class folders and dense-probe folders, and read with rasterio (all bands, as stored), not
skipped or handed to Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.embed.images import list_images
from geodino.eval import dense
from geodino.eval.datasets import _class_folders, read_array
from tests.data.conftest import ramp, write_tif


@pytest.mark.parametrize("suffix", [".gtif", ".GTiff"])
def test_gtif_chips_are_found_and_read_with_all_their_bands(tmp_path: Path, suffix: str) -> None:
    data = ramp(5, 16, 16).astype(np.uint16)
    (tmp_path / "forest").mkdir()
    chip = write_tif(tmp_path / "forest" / f"a{suffix}", data, nodata=None)
    assert _class_folders(tmp_path) == {"forest": [chip]}
    assert list_images(tmp_path) == [f"forest/a{suffix}"]
    assert dense.list_files(tmp_path / "forest", dense.IMAGE_SUFFIXES, "image") == [chip]
    assert dense.list_files(tmp_path / "forest", dense.RASTER_SUFFIXES, "image") == [chip]
    np.testing.assert_array_equal(read_array(chip), data)
