"""A QA band (SCL, QA60, QA_PIXEL) among the bands a raster source feeds the backbone: one warning naming the band
and pointing to `curate --qa-band`. Its codes would reach the backbone standardised like reflectance and
interpolated by every resize (a crop's bicubic resize turns SCL 3/4 edges into 2.8, 3.6, ...: shown here with the
crop resize pretraining uses); spectral bands alone give no such warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from geodino.data.archive import RasterArchive
from geodino.data.sensors import Sensor
from tests.embed.conftest import write_tif


def _tif(tmp_path, names):
    import rasterio

    data = np.full((len(names), 32, 32), 500, np.uint16)
    data[-1, :, :16] = 3  # an SCL-like last band: cloud shadow | vegetation
    data[-1, :, 16:] = 4
    path = write_tif(tmp_path / "s.tif", data, nodata=0)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = tuple(names)
    return str(path)


def _sensor(names):
    n = len(names)
    return Sensor("t", tuple(names), 1e-4, (0.1,) * n, (0.1,) * n, False)


def _qa_warnings(record):
    return [str(w.message) for w in record if "QA band" in str(w.message)]


@pytest.mark.parametrize("qa", ["SCL", "QA_PIXEL", "qa60"])
def test_qa_band_read_as_model_input_is_warned_once(tmp_path, qa):
    names = ["B02", "B03", "B04", qa]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        archive = RasterArchive([_tif(tmp_path, names)], sensor=_sensor(names))
    assert list(archive.band_names) == names
    (line,) = _qa_warnings(record)
    assert f"band {qa} is a QA band" in line and f"--qa-band {qa}" in line and "\n" not in line
    assert "interpolates the codes" in line and "`bands:`" in line


def test_spectral_bands_alone_and_qa_left_out_are_not_warned(tmp_path):
    names = ["B02", "B03", "B04", "SCL"]
    tif = _tif(tmp_path, names)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        RasterArchive([tif], sensor=_sensor(names[:3]), bands=names[:3])
    assert _qa_warnings(record) == []


def test_the_codes_such_a_band_reaches_the_backbone_with_are_interpolated():
    """Why the warning: the crops' resize gives codes the band never holds."""
    from geodino.data.crops import _resize

    scl = torch.zeros(1, 32, 32)
    scl[:, :, :16], scl[:, :, 16:] = 3.0, 4.0
    codes = set(np.round(_resize(scl, 20).numpy().ravel(), 3).tolist())
    assert codes - {3.0, 4.0}  # values between (and beyond) the two classes


def test_qa_variable_of_a_datacube_read_as_model_input_is_warned(tmp_path):
    """A datacube holding an SCL variable among the ones fed to the backbone: the same one line."""
    from geodino.data.cubes import CubeSource
    from tests.data.test_cube_band_variables import _per_band_store

    names = ["B02", "B03", "B04", "SCL"]
    path = _per_band_store(tmp_path, names, values=[500, 600, 700, 4])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = CubeSource(str(path), sensor=_sensor(names), tile_size=16)
    assert src.band_names == names
    (line,) = _qa_warnings(record)
    assert "band SCL is a QA band" in line and "--qa-band SCL" in line
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        CubeSource(str(path), sensor=_sensor(names[:3]), bands=names[:3], tile_size=16)
    assert _qa_warnings(record) == []
