"""uint8 data under a sensor of 16-bit DN: the advice names built-in 8-bit sensors of the sensor's band count only
(a 6-band Landsat file was offered naip and sat493m, of 4 and 3 bands)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from geodino.data.bit_depth import check_bit_depth
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import InputError


def _said(sensor: Sensor) -> str:
    with pytest.raises(InputError) as err:
        check_bit_depth("x.tif", np.uint8, sensor, kind="raster")
    return str(err.value)


def test_the_advice_names_8_bit_sensors_of_the_same_band_count() -> None:
    six = _said(get_sensor("landsat8"))
    assert "use a sensor of 8-bit DN with its 6 bands (e.g. a YAML from `geodino data stats` without --sensor)" in six
    s2 = get_sensor("sentinel2_l2a")
    four = dataclasses.replace(s2, name="s4", bands=s2.bands[:4], mean=s2.mean[:4], std=s2.std[:4])  # 4 bands, 1e-4
    assert "with its 4 bands (e.g. naip, or a YAML from" in _said(four)
