"""An RGB-like sensor that reads 16-bit DN as reflectance (scale 1: a `data stats` YAML written before data stats read
uint16 by the dtype rule) warns in one line where pretraining (and curation) builds a raster source: its crops'
colour jitter clamps to 0..1, so every crop came out one flat colour without a word."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.data.config import SourceConfig
from geodino.data.source_build import build_source
from tests.helpers import write_sensor_yaml, write_tif


def _rgb16(tmp_path):
    dn = np.random.default_rng(0).integers(200, 3000, (3, 32, 32)).astype(np.uint16)
    return write_tif(tmp_path / "rgb16.tif", dn)


def _build(tif, sensor):
    return build_source(SourceConfig(type="raster", paths=[str(tif)], sensor=str(sensor), tile_size=32), progress=False)


def test_an_old_scale_one_yaml_on_16_bit_rgb_warns_naming_the_sensor_the_file_and_the_fix(tmp_path):
    tif = _rgb16(tmp_path)
    old = write_sensor_yaml(tmp_path / "old.yaml", scale=1.0, mean=1600.0, std=800.0)
    with pytest.warns(UserWarning) as said:
        _build(tif, old)
    lines = [str(w.message) for w in said if "as reflectance" in str(w.message)]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"sensor 'old' reads the uint16 DN of {tif} as reflectance (scale 1, offset 0"), lines
    assert f"geodino data stats {tif} --out my.yaml" in lines[0] and "\n" not in lines[0]


def test_a_reflectance_scale_or_a_sensor_that_is_not_rgb_says_nothing(tmp_path):
    tif = _rgb16(tmp_path)
    new = write_sensor_yaml(tmp_path / "new.yaml", scale=1e-4, mean=0.16, std=0.08)
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "name: plain\nbands: [b1, b2, b3]\nscale: 1.0\noffset: 0.0\nmean: [1600, 1600, 1600]\n"
        "std: [800, 800, 800]\nrgb_like: false\n"
    )
    for sensor in (new, plain):  # reflectance; DN in their own unit with no colour ops
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _build(tif, sensor)
