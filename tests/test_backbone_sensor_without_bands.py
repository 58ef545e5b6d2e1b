"""`load_backbone(spec, sensor=NAME)` without `bands=` is not silently unused: the sensor's statistics of the
checkpoint's own bands standardise the input (the file's record is set aside, and said so), and a sensor whose band
count differs from a backbone without band names is refused in one line. An RGB file (R, G, B by default) with a
multispectral sensor was refused ("band 'R' is not a band of sensor 'sentinel2_l2a'"): its R, G, B are now the
sensor's red, green and blue bands."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.data.sensors import get_sensor
from geodino.errors import ConfigError
from geodino.models import build_model
from tests.helpers import four_band_backbone


def _stats(fb) -> list[float]:
    """The backbone's mean then std, one flat list (pytest.approx compares flat sequences)."""
    return fb.mean.flatten().tolist() + fb.std.flatten().tolist()


def test_sensor_stats_of_the_files_bands(tmp_path):
    path = four_band_backbone(tmp_path / "bb.safetensors")  # records blue, green, red, nir (mean 0.1)
    fb = load_backbone(path, sensor="sentinel2_l2a")
    s2 = get_sensor("sentinel2_l2a").select(["B02", "B03", "B04", "B08"])
    assert fb.bands == ["B02", "B03", "B04", "B08"]
    assert _stats(fb) == pytest.approx([*s2.mean, *s2.std])
    assert fb.norm_source.startswith("sensor sentinel2_l2a (passed); the file records")


def test_an_rgb_file_takes_the_sensors_red_green_blue(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "rgb.pth"
    torch.save(build_model("vit_tiny", patch_size=8, depth=1).state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb = load_backbone(path, sensor="sentinel2_l2a")
    s2 = get_sensor("sentinel2_l2a").select(["B04", "B03", "B02"])
    assert fb.bands == ["B04", "B03", "B02"] and _stats(fb) == pytest.approx([*s2.mean, *s2.std])
    naip = get_sensor("naip").select(["R", "G", "B"])  # a sensor with bands named R, G, B: those, as before
    assert _stats(load_backbone(path, sensor="naip")) == pytest.approx([*naip.mean, *naip.std])


def test_a_sensor_of_another_band_count_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^sensor 'naip' has 4 bands \(R, G, B, N\) but backbone arch:vit_tiny"):
        load_backbone("arch:vit_tiny?depth=1&patch_size=8", sensor="naip")
