"""`crops.ratio` with a zero low end passed `CropsConfig.validate` (0 <= low) and the crop boxes then took its log:
a raw "math domain error" from inside the loader. It is now refused in one line naming the key."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.data.config import CropsConfig
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig


def test_a_zero_aspect_ratio_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"crops\.ratio=\[0\.0, 1\.0\] must be \[low, high\] with 0 < low"):
        CropsConfig(ratio=[0.0, 1.0]).validate()
    with pytest.raises(ConfigError, match=r"crops\.ratio"):
        load_config(PretrainConfig, None, ["data.sources=[{type: images, paths: [a/]}]", "crops.ratio=[0, 1.5]"])


def test_positive_ratios_still_pass():
    CropsConfig(ratio=[0.5, 2.0]).validate()
    CropsConfig(ratio=[1.0, 1.0]).validate()
