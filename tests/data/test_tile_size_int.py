"""A source's `tile_size: 64` stays the int it was given: a pretraining run's saved config.yaml showed
`tile_size: 64.0` (the key was typed float, and OmegaConf turned every value into one); metres keep a fraction."""

from __future__ import annotations

import pytest
import yaml

from geodino.config import load_config, save_config
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig


def test_a_whole_tile_size_and_stride_are_saved_as_given(tmp_path):
    over = ["data.sources=[{type: raster, paths: [x.tif], tile_size: 64, stride: 32}, {type: raster, paths: [y.tif], "
            "tile_size: 640.5, tile_units: m}]"]  # fmt: skip
    cfg = load_config(PretrainConfig, None, over)
    save_config(cfg, tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())["data"]["sources"]
    assert (saved[0]["tile_size"], saved[0]["stride"]) == (64, 32)
    assert type(saved[0]["tile_size"]) is int and type(saved[0]["stride"]) is int  # "64.0" before
    assert saved[1]["tile_size"] == 640.5 and saved[1]["stride"] is None
    plain = load_config(PretrainConfig, None, ["data.sources=[{type: raster, paths: [x.tif]}]"])
    assert type(plain.data.sources[0].tile_size) is int  # the default 256 too


def test_a_tile_size_that_is_no_number_is_still_refused():
    with pytest.raises(ConfigError, match=r"config key 'tile_size' .* has a bad value: Value 'abc'"):
        load_config(PretrainConfig, None, ["data.sources=[{type: raster, paths: [x.tif], tile_size: abc}]"])
