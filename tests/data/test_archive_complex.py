"""A raster archive that reads pixels for a model (training sources, `viz attention`) refuses complex rasters (SAR
SLC, interferograms) in one line naming the file: reading them ended in numpy's `_UFuncInputCastingError`
traceback, and a cast to real would drop the imaginary part without a word. `data index` (inspection) lists them."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data.archive import RasterArchive
from geodino.errors import InputError


def _complex_tif(path, dtype: str = "complex64"):
    prof = dict(driver="GTiff", width=16, height=16, count=1, dtype=dtype, crs="EPSG:32633")
    with rasterio.open(path, "w", transform=from_origin(5e5, 4.65e6, 10, 10), **prof) as dst:
        # a CInt16 file too: rasterio writes it from complex64
        dst.write((np.ones((1, 16, 16)) * (1 + 2j)).astype("complex64"))
    return path


@pytest.mark.parametrize("dtype", ["complex64", "complex_int16"])
def test_a_complex_raster_is_refused_before_a_read(tmp_path, dtype):
    path = _complex_tif(tmp_path / "slc.tif", dtype)
    with pytest.raises(InputError) as err:
        RasterArchive(path, band_names=["hh"], progress=False)
    text = str(err.value)
    assert text.startswith(f"raster {path} holds complex numbers (complex"), text
    assert "write real-valued bands first" in text and "\n" not in text


def test_data_index_still_lists_a_complex_raster(tmp_path):
    path = _complex_tif(tmp_path / "slc.tif")
    archive = RasterArchive(path, uniform=False, require_crs=False, progress=False)
    assert [s.path for s in archive.scenes] == [str(path)] and archive.scenes[0].dtype.startswith("complex")
