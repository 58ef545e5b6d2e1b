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


def test_only_the_bands_read_decide(tmp_path):
    """A Landsat stack whose surface-temperature band declares its own rule (x*0.00341802+149) and whose SR bands
    declare none: SR bands read by --sensor landsat8 keep the sensor's rule (that band's rule would have made them
    kelvin); a stack of declaring bands beside an SCL band declaring none, read without it, takes their rule."""
    sr = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]
    dn = np.random.default_rng(2).integers(8000, 20000, size=(7, 16, 16)).astype(np.uint16)
    path = helpers.write_tif(tmp_path / "l8.tif", dn, descriptions=[*sr, "ST_B10"])
    with rasterio.open(path, "r+") as ds:
        ds.scales, ds.offsets = (1.0,) * 6 + (0.00341802,), (0.0,) * 6 + (149.0,)
    sample = read_input(path, sensor="landsat8", bands=sr)
    np.testing.assert_allclose(sample["image"], dn[:6] * 2.75e-5 - 0.2, atol=1e-5)
    scl = np.concatenate([np.random.default_rng(3).integers(1001, 6000, size=(3, 16, 16)), np.full((1, 16, 16), 4)])
    path = helpers.write_tif(tmp_path / "s2scl.tif", scl.astype(np.uint16), descriptions=[*BANDS, "SCL"])
    with rasterio.open(path, "r+") as ds:
        ds.scales, ds.offsets = (1e-4,) * 3 + (1.0,), (-0.1,) * 3 + (0.0,)
    sample = read_input(path, sensor="sentinel2_l2a", bands=BANDS)
    np.testing.assert_allclose(sample["image"], scl[:3] * 1e-4 - 0.1, atol=1e-6)


RECORDLESS = "arch:vit_tiny?depth=1&patch_size=8"  # no record of a DN scale: ImageNet's mean/std by default


def test_without_sensor_or_record_the_declared_rule_is_read_as_embed_reads_it(declaring):
    """No --sensor and a backbone recording no DN scale: viz asked for --sensor while `geodino embed` read the
    file's declared rule with the backbone's mean/std. Now viz reads it so too (all bands, or --bands by name)."""
    path, dn = declaring
    bb = load_backbone(RECORDLESS)
    sample = read_input(path, backbone=bb)
    np.testing.assert_allclose(sample["image"], dn * 1e-4 - 0.1, atol=1e-6)
    assert sample["sensor_note"] == (
        f"geodino: no --sensor given: {path} is read by its own GDAL scale/offset, physical value = DN * 0.0001 - "
        "0.1, as geodino embed reads it (bands B02, B03, B04, standardised by the backbone's mean/std)"
    )
    two = load_backbone(RECORDLESS + "&bands=2")
    sample = read_input(path, backbone=two, bands=["B04", "B02"])
    np.testing.assert_allclose(sample["image"], dn[[2, 0]] * 1e-4 - 0.1, atol=1e-6)


def test_without_sensor_or_record_a_file_not_fully_declared_still_needs_a_sensor(declaring, tmp_path):
    """A band declaring nothing, a file declaring nothing, or another band count than the backbone's: no rule
    to read, so --sensor is asked for as before."""
    from geodino.errors import GeoDinoError

    path, dn = declaring
    partly = helpers.write_tif(tmp_path / "partly.tif", dn, descriptions=BANDS)
    with rasterio.open(partly, "r+") as ds:
        ds.scales, ds.offsets = (1e-4, 1e-4, 1.0), (-0.1, -0.1, 0.0)
    plain = helpers.write_tif(tmp_path / "plain.tif", dn, descriptions=BANDS)
    for f, spec in ((partly, RECORDLESS), (plain, RECORDLESS), (path, RECORDLESS + "&bands=2")):
        with pytest.raises(GeoDinoError, match="need a sensor: set --sensor"):
            read_input(f, backbone=load_backbone(spec))
