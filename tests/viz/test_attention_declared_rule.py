"""`viz attention` reads a raster's own GDAL scale/offset as `geodino embed` does (ahead of --sensor and the
backbone's record): a VRT that `data stack` wrote from a Sentinel-2 SAFE of processing baseline >= 04.00 declares
x*0.0001-0.1, which embed applied while viz refused the file (the sensor's rule is x*0.0001)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.backbones import load_backbone
from geodino.viz.attention import read_input
from tests import helpers

BANDS = ["B02", "B03", "B04"]


@pytest.fixture()
def declaring(tmp_path):
    """uint16 B02, B03, B04 of DN + 1000, declaring physical value = DN * 0.0001 - 0.1."""
    dn = np.random.default_rng(0).integers(1001, 6000, size=(3, 16, 16)).astype(np.uint16)
    path = helpers.write_tif(tmp_path / "s2.tif", dn, descriptions=BANDS)
    with rasterio.open(path, "r+") as ds:
        ds.scales, ds.offsets = (1e-4,) * 3, (-0.1,) * 3
    return path, dn


def test_a_declared_rule_goes_ahead_of_the_sensor_given(declaring):
    path, dn = declaring
    sample = read_input(path, sensor="sentinel2_l2a", bands=BANDS)
    np.testing.assert_allclose(sample["image"], dn * 1e-4 - 0.1, atol=1e-6)
    assert "is read by its own GDAL scale/offset, physical value = DN * 0.0001 - 0.1" in sample["sensor_note"]


def test_a_declared_rule_goes_ahead_of_the_backbones_record(declaring):
    path, dn = declaring
    bb = load_backbone("arch:vit_tiny?depth=1&patch_size=8&sensor=sentinel2_l2a&bands=B02,B03,B04")
    sample = read_input(path, backbone=bb)
    np.testing.assert_allclose(sample["image"], dn * 1e-4 - 0.1, atol=1e-6)
    assert sample["sensor_note"].endswith("(bands of sensor sentinel2_l2a, whose rule is DN * 0.0001 + 0)")


def test_a_file_declaring_the_sensors_rule_reads_as_before(tmp_path):
    dn = np.random.default_rng(1).integers(1, 6000, size=(3, 16, 16)).astype(np.uint16)
    path = helpers.write_tif(tmp_path / "old.tif", dn, descriptions=BANDS)
    with rasterio.open(path, "r+") as ds:
        ds.scales = (1e-4,) * 3
    sample = read_input(path, sensor="sentinel2_l2a", bands=BANDS)
    np.testing.assert_allclose(sample["image"], dn * 1e-4, atol=1e-6)
    assert "sensor_note" not in sample
