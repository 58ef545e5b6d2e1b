"""`--cloud-rule swir` on a sensor without all of blue, green, red, nir and swir16 names the missing band roles."""

from __future__ import annotations

import pytest

from geodino.data.curate.clouds import cloud_rule
from geodino.data.sensors import get_sensor
from geodino.errors import ConfigError


def test_swir_rule_names_only_the_missing_roles():
    with pytest.raises(ConfigError) as err:
        cloud_rule(get_sensor("sentinel2_l2a").select(["B02", "B03", "B04", "B08"]), "swir")  # only swir16 missing
    msg = str(err.value)
    assert "lacks swir16 (" in msg and "B02, B03, B04, B08" in msg
    with pytest.raises(ConfigError, match=r"sensor 'imagenet' lacks nir and swir16 \("):
        cloud_rule(get_sensor("imagenet"), "swir")
