"""The sensor-aware cloud screen of curation: which rule each sensor gets, and each rule on hand-made pixels
(clouds flagged; bright roofs, snow and coloured bright surfaces kept)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.curate.clouds import cloud_rule
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import ConfigError


def _sensor(bands, scale=1e-4) -> Sensor:
    n = len(bands)
    return Sensor("t", tuple(bands), scale, (0.1,) * n, (0.1,) * n, False)


def test_auto_picks_the_rule_the_bands_allow():
    assert cloud_rule(get_sensor("imagenet")).kind == "rgb"
    l2a = cloud_rule(get_sensor("sentinel2_l2a"))
    assert l2a.kind == "swir" and "cirrus" not in l2a.bands and l2a.bands["swir16"] == 10  # B11 of 12 bands
    l1c = cloud_rule(get_sensor("sentinel2_l1c"))
    assert l1c.kind == "swir" and l1c.bands["cirrus"] == 10  # B10
    assert cloud_rule(get_sensor("landsat8")).kind == "swir"
    assert cloud_rule(_sensor(["B02", "B03", "B04", "SCL"])).kind == "qa"
    assert cloud_rule(_sensor(["pan"])).kind == "bright"
    assert cloud_rule(get_sensor("imagenet"), "off").share(np.ones((3, 4, 4)), np.ones((4, 4), bool)) == 0.0
    with pytest.raises(ConfigError, match="--cloud-rule swir: sensor 'imagenet' lacks"):
        cloud_rule(get_sensor("imagenet"), "swir")


def test_swir_rule_on_hand_made_spectra():
    s2 = get_sensor("sentinel2_l1c")
    idx = {b: i for i, b in enumerate(s2.bands)}

    def pixel(blue, green, red, nir, swir16, swir22, cirrus=0.0):
        v = np.full(len(s2.bands), 0.1, np.float32)
        for b, x in zip(
            ("B02", "B03", "B04", "B08", "B11", "B12", "B10"), (blue, green, red, nir, swir16, swir22, cirrus)
        ):
            v[idx[b]] = x
        return v

    px = np.stack(
        [
            pixel(0.5, 0.5, 0.5, 0.5, 0.4, 0.3),  # cloud: white, HOT 0.17 > 0, NIR/SWIR1 1.25, NDSI 0.11
            pixel(0.3, 0.32, 0.35, 0.4, 0.6, 0.5),  # bright roof/soil: NIR/SWIR1 0.67 < 0.75
            pixel(0.9, 0.9, 0.9, 0.8, 0.08, 0.05),  # snow: NDSI (0.9-0.08)/0.98 = 0.84 >= 0.8
            pixel(0.05, 0.08, 0.04, 0.4, 0.2, 0.1),  # vegetation: HOT < 0
            pixel(0.05, 0.08, 0.04, 0.4, 0.2, 0.1, cirrus=0.05),  # vegetation under cirrus
        ]
    ).T[:, None, :]  # [C, 1, 5]
    rule = cloud_rule(s2)
    assert rule.mask(px)[0].tolist() == [True, False, False, False, True]
    assert cloud_rule(get_sensor("sentinel2_l2a")).kind == "swir"
    valid = np.array([[True, True, True, True, False]])
    assert rule.share(px, valid) == pytest.approx(1 / 4)


def test_qa_rules_read_the_raw_codes():
    s = _sensor(["B02", "B03", "B04", "SCL"])
    scl = np.array([4, 8, 9, 10, 3], np.float32)  # vegetation, cloud medium, high, cirrus, shadow
    img = np.zeros((4, 1, 5), np.float32)
    img[3, 0] = scl * 1e-4  # as the source gives it: the sensor's scale applied
    assert cloud_rule(s).mask(img)[0].tolist() == [False, True, True, True, False]
    q = _sensor(["SR_B2", "SR_B3", "SR_B4", "QA_PIXEL"], scale=1.0)
    img = np.zeros((4, 1, 4), np.float32)
    img[3, 0] = [1 << 6, 1 << 3, 1 << 2, (1 << 6) | (1 << 1)]  # clear, cloud, cirrus, dilated cloud
    assert cloud_rule(q).mask(img)[0].tolist() == [False, True, True, True]
    q60 = _sensor(["B02", "B03", "B04", "QA60"], scale=1.0)
    img = np.zeros((4, 1, 3), np.float32)
    img[3, 0] = [0, 1 << 10, 1 << 11]
    assert cloud_rule(q60).mask(img)[0].tolist() == [False, True, True]


def test_rgb_rule_keeps_bright_textured_roofs_and_drops_smooth_white():
    rgb = cloud_rule(get_sensor("imagenet"))
    valid = np.ones((32, 32), bool)
    white = np.full((3, 32, 32), 0.85, np.float32)
    assert rgb.share(white, valid) == 1.0
    roofs = np.full((3, 32, 32), 0.2, np.float32)  # 6x6 px bright grey roofs with 2 px dark streets
    for y in range(0, 32, 8):
        for x in range(0, 32, 8):
            roofs[:, y : y + 6, x : x + 6] = 0.8
    bright = cloud_rule(get_sensor("imagenet"), "bright")
    assert bright.share(roofs, valid) > 0.5  # the brightness-only screen would drop this tile
    assert rgb.share(roofs, valid) < 0.1  # edges everywhere within 5 px
    sand = np.stack([np.full((32, 32), v, np.float32) for v in (0.9, 0.75, 0.5)])  # bright but yellow
    assert rgb.share(sand, valid) == 0.0 and bright.share(sand, valid) == 1.0
    grey = np.full((3, 32, 32), 0.4, np.float32)  # smooth and white but dark: not a cloud at t = 0.5
    assert rgb.share(grey, valid) == 0.0
