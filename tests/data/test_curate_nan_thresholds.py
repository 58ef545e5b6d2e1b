"""`--dedup nan` and `--cloud-threshold nan` are refused in one line (exit 2) before anything is read or written:
NaN compares false, so the near-duplicate filter (`dedup < 1`) and the rgb/bright screens (`band >= threshold`)
were turned off without a word (exit 0). `--dedup -1` (every tile a duplicate of the first) is refused too."""

from __future__ import annotations

import pytest

from geodino.data.curate import CurateConfig
from geodino.errors import ConfigError
from tests.data.test_curate import SPEC


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        (["--dedup", "nan"], "--dedup nan (dedup= in Python) is out of range: give a cosine similarity above -1"),
        (["--dedup", "-1"], "--dedup -1.0 (dedup= in Python) is out of range"),
        (["--cloud-threshold", "nan"], "--cloud-threshold nan (cloud_threshold= in Python): give a reflectance number"),
    ],
)
def test_nan_thresholds_one_line_and_nothing_written(curate_refuses, flags, expect):
    curate_refuses(flags, expect)


def test_validate_keeps_the_documented_values():
    base = {"paths": ["x"], "backbone": SPEC, "size": 1}
    for dedup in (0.95, 0.0, -0.5, 1.0, 1.01):  # 1 or above: the filter off, as documented
        CurateConfig(**base, dedup=dedup).validate()
    CurateConfig(**base, cloud_threshold=0.3).validate()
    with pytest.raises(ConfigError, match=r"^--dedup nan \(dedup= in Python\) is out of range"):
        CurateConfig(**base, dedup=float("nan")).validate()
