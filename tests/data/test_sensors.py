"""Sensors: built-in statistics, arithmetic on numpy and torch, selection, YAML round trip and bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.data.sensors import Sensor, get_sensor, list_sensors, load_sensor_yaml, save_sensor_yaml
from geodino.errors import ConfigError, InputError


def test_builtin_sensors_present_and_consistent():
    names = list_sensors()
    for n in ["sat493m", "imagenet", "sentinel2_l1c", "sentinel2_l2a", "landsat8", "landsat9", "naip", "maxar"]:
        assert n in names
        s = get_sensor(n)
        assert len(s.mean) == len(s.std) == s.n_bands
    assert get_sensor("sentinel2_l1c").n_bands == 13
    assert get_sensor("sentinel2_l2a").n_bands == 12
    assert "B10" not in get_sensor("sentinel2_l2a").bands
    assert get_sensor("sat493m").mean == (0.430, 0.411, 0.296)
    assert get_sensor("sat493m").std == (0.213, 0.156, 0.143)
    assert get_sensor("Sentinel2-L2A") is get_sensor("sentinel2_l2a")


def test_normalize_numpy_and_torch_match_hand_values():
    s = get_sensor("sat493m")
    x = np.full((3, 2, 2), 255, dtype=np.uint8)
    out = s.normalize(x)
    expected = (1.0 - np.array([0.430, 0.411, 0.296])) / np.array([0.213, 0.156, 0.143])
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=1e-5)
    t = s.normalize(torch.from_numpy(x).unsqueeze(0))
    assert t.dtype == torch.float32 and t.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(t[0, :, 1, 1].numpy(), expected, rtol=1e-5)


def test_landsat_offset_and_per_band_select():
    s = get_sensor("landsat8")
    x = np.full((6, 1, 1), 10000, dtype=np.uint16)
    np.testing.assert_allclose(s.to_reflectance(x)[:, 0, 0], 10000 * 2.75e-5 - 0.2, rtol=1e-6)
    rgb = get_sensor("sentinel2_l2a").select(["red", "green", "B2"])
    assert rgb.bands == ("B04", "B03", "B02")
    assert rgb.mean == (0.129747, 0.114416, 0.08843)


def test_select_missing_band_names_it():
    with pytest.raises(InputError, match=r"band 'B13' is not a band of sensor 'sentinel2_l2a'"):
        get_sensor("sentinel2_l2a").select(["B04", "B13"])


def test_channel_mismatch_is_clear():
    with pytest.raises(InputError, match=r"has 3 bands .* but the image has 4 channels"):
        get_sensor("imagenet").normalize(np.zeros((4, 2, 2)))


def test_unknown_sensor_suggests():
    with pytest.raises(ConfigError, match=r"unknown sensor 'sentinel2_l2x'.*did you mean"):
        get_sensor("sentinel2_l2x")


def test_yaml_round_trip(tmp_path):
    s = Sensor("mine", ("a", "b"), 0.5, (0.1, 0.2), (1.0, 2.0), False, nodata=-1, offset=(0.0, 1.0))
    path = save_sensor_yaml(s, tmp_path / "mine.yaml")
    back = get_sensor(str(path))
    assert back.bands == s.bands and back.mean == s.mean and back.offset == (0.0, 1.0) and back.nodata == -1


def test_yaml_missing_bands_stats(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\nbands: [a, b, c]\nscale: 1\nmean: [0, 0]\nstd: [1, 1, 1]\n")
    with pytest.raises(ConfigError, match=r"'mean' has 2 values but 'bands' has 3 \(a, b, c\)"):
        load_sensor_yaml(p)
    p.write_text("name: bad\nscale: 1\nmean: [0]\nstd: [1]\n")
    with pytest.raises(ConfigError, match="is missing bands"):
        load_sensor_yaml(p)
    with pytest.raises(ConfigError, match="not found"):
        get_sensor(str(tmp_path / "nope.yaml"))
