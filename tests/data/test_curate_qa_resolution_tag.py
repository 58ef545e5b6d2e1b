"""`--cloud-rule auto`/`qa` find a QA band named with a SAFE resolution tag (`SCL_20m`, `QA60_60m`, `QA_PIXEL_30m`,
as `data stack --bands SCL_20m` names it), as `archive_bands.qa_kind` reads it. Exact names only were matched, so
such a band was read as reflectance and the rgb rule was picked (`--cloud-rule qa`: 'has no SCL, QA60 or QA_PIXEL
band'; `--qa-shadow`: refused)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.curate.clouds import cloud_rule
from geodino.data.sensors import Sensor


def _sensor(bands, scale=1e-4) -> Sensor:
    n = len(bands)
    return Sensor("t", tuple(bands), scale, (0.1,) * n, (0.1,) * n, False)


@pytest.mark.parametrize(
    ("qa_name", "kind"), [("SCL_20m", "scl"), ("scl_60m", "scl"), ("QA60_60m", "qa60"), ("QA_PIXEL_30m", "qa_pixel")]
)
@pytest.mark.parametrize("rule", ["auto", "qa"])
def test_a_qa_band_with_a_resolution_tag_is_the_qa_band(qa_name, kind, rule):
    r = cloud_rule(_sensor(["B02", "B03", "B04", qa_name]), rule)
    assert r.kind == "qa" and r.bands == {"qa": 3} and r.qa == (kind, 1e-4, 0.0)


def test_scl_20m_codes_are_decoded_as_scl_classes_and_shadow_is_allowed():
    s = _sensor(["B02", "B03", "B04", "SCL_20m"])
    codes = np.array([[4, 8, 9, 10], [3, 2, 11, 5]])  # vegetation, cloud med/high, cirrus; shadow, dark, snow, soil
    image = np.full((4, 2, 4), 0.05, np.float32)  # dark spectral bands: the rgb rule would call nothing cloud
    image[3] = codes * 1e-4  # the QA band as read: DN times the sensor's scale
    valid = np.ones((2, 4), bool)
    cloud = cloud_rule(s).mask(image)
    assert cloud.tolist() == [[False, True, True, True], [False, False, False, False]]
    assert cloud_rule(s).share(image, valid) == 3 / 8
    shadow = cloud_rule(s, "auto", shadow=True).mask(image)  # was refused: 'screened by the rgb rule'
    assert shadow.tolist() == [[False, True, True, True], [True, False, False, False]]


def test_qa60_60m_bits_are_decoded():
    s = _sensor(["B02", "B03", "B04", "QA60_60m"], scale=1.0)
    image = np.zeros((4, 1, 3), np.float32)
    image[3, 0] = [0, 1024, 2048]  # clear, opaque (bit 10), cirrus (bit 11)
    assert cloud_rule(s).mask(image).tolist() == [[False, True, True]]
