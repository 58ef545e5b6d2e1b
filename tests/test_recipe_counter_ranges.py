"""The Gram refresh counters and the collapse-monitor thresholds are range-checked like the rest of the recipe.

Before, `ssl.gram.max_updates=-1` silently never refreshed the Gram teacher, `ssl.monitor.entropy_tol=nan` never
warned (docs/recipe.md says NaN is refused anywhere), `entropy_tol=0.6` flagged every entropy as collapsed and
`monitor.every=-1` ran the monitors every step."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig

BAD = [
    ("ssl.gram.max_updates=-1", "ssl.gram.max_updates=-1 must be a number >= 0"),
    ("ssl.gram.it_first_update=-5", "ssl.gram.it_first_update=-5 must be a number >= 0"),
    ("ssl.gram.it_load_ema_teacher=-1", "ssl.gram.it_load_ema_teacher=-1 must be a number >= 0"),
    ("ssl.monitor.every=-1", "ssl.monitor.every=-1 must be a number >= 0: 0 turns the monitors off"),
    ("ssl.monitor.patience=0", "ssl.monitor.patience=0 must be a number >= 1"),
    ("ssl.monitor.entropy_tol=.nan", "ssl.monitor.entropy_tol=nan must be a number in [0, 0.5)"),
    ("ssl.monitor.entropy_tol=0.6", "ssl.monitor.entropy_tol=0.6 must be a number in [0, 0.5)"),
    ("ssl.monitor.std_tol=-0.1", "ssl.monitor.std_tol=-0.1 must be a number >= 0"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_out_of_range_counters_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, "demo", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_boundary_counters_pass() -> None:
    ok = [
        "ssl.gram.max_updates=0",
        "ssl.gram.max_updates=null",
        "ssl.gram.it_first_update=0",
        "ssl.monitor.every=0",
        "ssl.monitor.patience=1",
        "ssl.monitor.entropy_tol=0",
        "ssl.monitor.std_tol=0",
    ]
    cfg = load_config(PretrainConfig, "demo", ok)
    assert cfg.ssl.gram.max_updates is None and cfg.ssl.monitor.every == 0
