"""`data stats --offset` and `--scale` each replace only their own part of the rule: with `--sensor`, an offset
given alone was dropped (`--sensor maxar --offset 5` wrote `offset: 0.0` and the same means) and a scale given alone
reset the sensor's offset to 0 (Landsat's -0.2 lost); without a sensor, a file's declared rule replaced a given
offset without a word."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.stats import compute_stats
from geodino.errors import InputError
from tests.data.conftest import ramp, write_tif


def _stats(path, **kw):
    sensor, _ = compute_stats([str(path)], samples=4, tile_size=16, progress=False, **kw)
    return sensor


def test_an_offset_alone_replaces_the_sensors_and_keeps_its_scale(tmp_path):
    data = ramp(3, 32, 32, dtype="uint8")
    path = write_tif(tmp_path / "a.tif", data, nodata=None)
    plain = _stats(path, sensor="maxar")
    shifted = _stats(path, sensor="maxar", offset=5.0)
    assert shifted.offset == 5.0 and shifted.scale == plain.scale == pytest.approx(1 / 255)
    np.testing.assert_allclose(np.asarray(shifted.mean) - np.asarray(plain.mean), 5.0, atol=1e-5)
    np.testing.assert_allclose(shifted.std, plain.std, atol=1e-6)


def test_a_scale_alone_keeps_the_sensors_offset(tmp_path):
    path = write_tif(tmp_path / "l8.tif", ramp(6, 32, 32), nodata=None)
    sensor = _stats(path, sensor="landsat8", scale=3e-5)
    assert sensor.scale == 3e-5 and np.allclose(sensor.offset, -0.2)  # was offset 0.0
    by_hand = ramp(6, 32, 32).reshape(6, -1).mean(1) * 3e-5 - 0.2
    np.testing.assert_allclose(sensor.mean, by_hand, atol=1e-4)


def test_without_a_sensor_the_declared_rule_fills_only_what_was_not_given(tmp_path):
    import rasterio

    path = write_tif(tmp_path / "d.tif", ramp(3, 32, 32), nodata=None)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (1e-4,) * 3, (-0.1,) * 3
    declared = _stats(path)
    assert np.allclose(declared.scale, 1e-4) and np.allclose(declared.offset, -0.1)
    with pytest.raises(InputError, match=r"declares physical value = DN \* 0\.0001 - 0\.1"):
        _stats(path, offset=0.0)  # another rule than the file's: refused, as --scale alone is (was read as -0.1)
