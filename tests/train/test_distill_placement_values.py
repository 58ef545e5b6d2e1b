"""`students[i].ranks` / `.share` values are refused when the config loads, in plan_subgroups's words. A run on one
process ignores them (its students share the process): `share: -1` or `ranks: [3, 1]` passed a one-process trial
and was refused only once the multi-GPU job had started."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.distill import DistillConfig


def _load(student: str) -> DistillConfig:
    return load_config(DistillConfig, None, ["data.sources=[{type: synthetic}]", f"students=[{student}]"])


@pytest.mark.parametrize(
    ("student", "message"),
    [
        ("{name: a, share: -1}", r"^students\[0\]\.share=-1(\.0)? \(a\) must be a positive number$"),
        ("{name: a, share: .nan}", r"^students\[0\]\.share=nan \(a\) must be a positive number$"),
        ("{name: a, ranks: [3, 1]}", r"^students\[0\]\.ranks=\[3, 1\] \(a\) must be \[start, end\] with 0 <= start"),
        ("{name: a, ranks: [0]}", r"^students\[0\]\.ranks=\[0\] \(a\) must be \[start, end\]"),
        ("{name: a, ranks: [-1, 2]}", r"^students\[0\]\.ranks=\[-1, 2\] \(a\) must be \[start, end\]"),
    ],
)
def test_a_placement_value_no_world_can_take_is_refused_at_load(student: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(student)


def test_placement_values_a_world_can_take_load() -> None:
    assert _load("{name: a, ranks: [0, 2]}").students[0].ranks == [0, 2]
    assert _load("{name: a, share: 0.5}").students[0].share == 0.5
