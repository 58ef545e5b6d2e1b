"""A short distillation run's exported EMA is largely the students' init: with the official momentum 0.994 -> 1 the
EMA keeps the product of its momenta of the initial weights, 94 % after 20 steps and 5 % after the default 1000,
and nothing said so. The run now warns at its start (fresh runs, `train.export=ema` only) when the share is over
10 % (not the default 1000 steps) with the ways out; the suggested momentum 1 - 10/steps keeps under 1 %."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino.config import load_config
from geodino.train.distill import DistillConfig, distill
from geodino.train.distill.build import build_schedules
from geodino.train.distill.ema_share import ema_init_share, short_ema_warning
from tests.train.test_distill import _cfg


def _schedules(*overrides: str):
    cfg = load_config(DistillConfig, None, ["data.sources=[{type: images, paths: [x/]}]", *overrides])
    return cfg, build_schedules(cfg)


def test_the_share_is_the_product_of_the_momenta() -> None:
    _, sched = _schedules("train.max_steps=20")
    # by hand: v2 cosine 0.994 -> 1 over 20 steps, both ends included (official linear_warmup_cosine_decay)
    m = [1.0 + (0.994 - 1.0) * (1 + math.cos(math.pi * k / 19)) / 2 for k in range(20)]
    assert sched.momentum[0] == pytest.approx(0.994) and sched.momentum[19] == pytest.approx(1.0)
    assert ema_init_share(sched.momentum, 20) == pytest.approx(float(np.prod(m)), rel=1e-12)
    assert ema_init_share(sched.momentum, 20) == pytest.approx(0.9416, abs=1e-4)
    _, long = _schedules("train.max_steps=1000")
    assert ema_init_share(long.momentum, 1000) == pytest.approx(0.0495, abs=1e-4)


@pytest.mark.parametrize("steps", [20, 300])
def test_short_runs_are_warned_and_the_suggested_momentum_fixes_them(steps: int) -> None:
    cfg, sched = _schedules(f"train.max_steps={steps}")
    message = short_ema_warning(cfg, sched)
    share = ema_init_share(sched.momentum, steps)
    assert message is not None and f"keeps {share:.1%} of their initial weights after {steps} steps" in message
    assert "train.export=student" in message
    m = max(0.0, 1 - 10 / steps)
    fixed_cfg, fixed = _schedules(f"train.max_steps={steps}", f"schedules.momentum={{start: {m}, peak: {m}, end: 1.0}}")
    assert f"schedules.momentum={{start: {m:.4g}, peak: {m:.4g}, end: 1.0}}" in message
    assert ema_init_share(fixed.momentum, steps) < 0.01 and short_ema_warning(fixed_cfg, fixed) is None
    raw_cfg, raw = _schedules(f"train.max_steps={steps}", "train.export=student")
    assert short_ema_warning(raw_cfg, raw) is None  # the raw student is exported: its EMA does not matter


@pytest.mark.parametrize("steps", [1000, 25000])
def test_the_default_and_official_lengths_are_not_warned(steps: int) -> None:
    cfg, sched = _schedules(f"train.max_steps={steps}")
    assert ema_init_share(sched.momentum, steps) < 0.1 and short_ema_warning(cfg, sched) is None
    cfg, sched = _schedules("train.max_steps=700")  # 0.994 -> 1 over 700 steps keeps 12.2 %: just warned
    assert ema_init_share(sched.momentum, 700) > 0.1 and short_ema_warning(cfg, sched) is not None


def test_a_distill_run_warns_at_its_start(images: Path, tmp_path: Path) -> None:
    official = "schedules.momentum={start: 0.994, peak: 0.994, end: 1.0}"  # the tiny run's own momentum keeps none
    cfg = _cfg(images, tmp_path / "run", "train.max_steps=1", official)
    with pytest.warns(UserWarning, match=r"the students' EMA keeps 99\.4% of their initial weights after 1 steps"):
        distill(cfg)
    again = _cfg(images, tmp_path / "run2", "train.max_steps=1", official, "train.export=student")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*students' EMA.*")
        distill(again)
