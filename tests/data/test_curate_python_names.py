"""A `CurateConfig` built in Python is refused naming the keyword its caller passed (`size=`, `strategy=` ...)
beside the CLI flag, in one line, before anything is read."""

from __future__ import annotations

import pytest

from geodino.data.curate.config import CurateConfig
from geodino.errors import ConfigError

BASE = {"paths": ["x.tif"], "backbone": "arch:vit_tiny", "size": 4}


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        ({"size": 0}, r"^--size 0 \(size= in Python\): give the number of tiles"),
        ({"strategy": "best"}, r"^--strategy 'best' \(strategy= in Python\); use random or closest"),
        ({"max_cloud": 2.0}, r"^--max-cloud 2\.0 \(max_cloud= in Python\) must be in \[0, 1\]"),
        ({"batch_size": 0}, r"^--batch-size 0 \(batch_size= in Python\) is out of range"),
        ({"on_error": "warn"}, r"^--on-error 'warn' \(on_error= in Python\); use stop or skip"),
        ({"backbone": ""}, r"^curate needs --backbone SPEC \(backbone= in Python\)"),
        ({"paths": []}, r"either PATHS or --config CFG\.yaml \(its data\.sources; paths= or config= in Python\)"),
    ],
)
def test_curate_config_refusals_name_the_python_keyword(changes, expect):
    with pytest.raises(ConfigError, match=expect) as err:
        CurateConfig(**{**BASE, **changes}).validate()
    assert "\n" not in str(err.value)


def test_a_valid_curate_config_passes():
    CurateConfig(**BASE).validate()
