"""The length check counts what the schedule kind uses: v1 runs its cosine over what warmup, freeze and hold leave
and has no cosine length, so `cosine_iters` (the distillation default 0.5) must not make a v1 schedule too long;
v2 uses it and counts it."""

from __future__ import annotations

import math

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.recipe import SSLConfig
from geodino.train.schedules import Schedules

BASE = ["optim.scaling_rule=none", "optim.freeze_last_layer_iters=0"]


def _cfg(kind: str, lr: str) -> SSLConfig:
    return load_config(SSLConfig, None, [*BASE, f"schedules.kind={kind}", f"schedules.lr={lr}"])


def test_v1_ignores_cosine_iters_in_the_length_check() -> None:
    cfg = _cfg("v1", "{start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 0.6, cosine_iters: 0.5}")
    lr = Schedules.build(cfg, total_iters=10).lr.values
    # warmup linspace(0, 1, 6), then v1's cosine over the 4 left: 0.5 (1 + cos(pi i / 4))
    expected = [i / 5 for i in range(6)] + [0.5 * (1 + math.cos(math.pi * i / 4)) for i in range(4)]
    assert lr.tolist() == pytest.approx(expected)
    # the same schedule as without cosine_iters (it is not used by v1)
    same = _cfg("v1", "{start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 0.6}")
    assert Schedules.build(same, total_iters=10).lr.values.tolist() == lr.tolist()
    # an integer cosine length longer than the run is not counted either
    big = _cfg("v1", "{start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 6, cosine_iters: 50}")
    assert Schedules.build(big, total_iters=10).lr.values.tolist() == pytest.approx(expected)
    # what v1 does use still counts, and the message names only those
    too_long = _cfg("v1", "{start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 6, hold_iters: 5, cosine_iters: 0.5}")
    with pytest.raises(ConfigError, match=r"^schedules\.lr: warmup_iters \+ freeze_iters \+ hold_iters = 11 exceeds"):
        Schedules.build(too_long, total_iters=10)


def test_v2_counts_cosine_iters() -> None:
    cfg = _cfg("v2", "{start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 0.6, cosine_iters: 0.5}")
    with pytest.raises(
        ConfigError, match=r"^schedules\.lr: warmup_iters \+ cosine_iters \+ freeze_iters \+ hold_iters = 11 exceeds"
    ):
        Schedules.build(cfg, total_iters=10)
    ok = _cfg("v2", "{start: 0.0, peak: 1.0, end: 0.2, warmup_iters: 0.6, cosine_iters: 0.4}")
    lr = Schedules.build(ok, total_iters=10).lr.values
    assert lr[:6].tolist() == pytest.approx([i / 6 for i in range(6)]) and lr[-1] == pytest.approx(0.2)


def test_a_v1_distillation_config_with_a_long_warmup_builds() -> None:
    """The distillation default cosine_iters 0.5 with kind v1 and warmup 0.6: it was refused as 0.6 + 0.5 > 1."""
    from geodino.train.distill import DistillConfig
    from geodino.train.distill.build import build_schedules

    source = "data.sources=[{type: images, paths: [/tmp], sensor: imagenet}]"
    cfg = load_config(
        DistillConfig, None, [source, "train.max_steps=100", "schedules.kind=v1", "schedules.lr.warmup_iters=0.6"]
    )
    assert cfg.schedules.lr.cosine_iters == 0.5
    lr = build_schedules(cfg).lr.values
    # the distillation lr (start = peak = 0, end 5e-5): flat at 0 through the warmup, then v1's cosine up to the end
    assert len(lr) == 100 and (lr[:61] == 0.0).all() and 0.0 < lr[80] < lr[99] < 5e-5
