"""The distillation's teacher temperature against the official recipe, value by value (no fix: a check).

The official ViT-L distillation (`dinov3_vitl16_lvd1689m_distilled.yaml`) has a `schedules:` block, so dinov3's
`build_schedulers_v2` builds its teacher temperature as `linear_warmup_cosine_decay(start=0.04, peak=0.07, end=0.07,
warmup_iterations=0, ...)`: the linear part (`np.linspace(start, peak, 0, endpoint=False)`) is empty and the rest
is a cosine from 0.07 to 0.07, so every step uses 0.07; its `teacher.warmup_teacher_temp*` keys are read only by
`build_schedulers_v1`. geodino's default is that constant, and a configured warm-up follows the official linspace."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.train.distill import DistillConfig
from geodino.train.distill.build import build_schedules


def _temps(images, steps: list[int], *extra: str) -> list[float]:
    src = f"data.sources=[{{type: images, paths: [{images}]}}]"
    sched = build_schedules(load_config(DistillConfig, None, [src, "train.max_steps=100", *extra]))
    return [float(sched.at(i)["teacher_temp"]) for i in steps]


def test_the_default_is_the_official_constant(images) -> None:
    steps = [0, 1, 29, 30, 50, 99]
    assert _temps(images, steps) == pytest.approx([0.07] * len(steps), abs=1e-12)
    official = "schedules.teacher_temp={start: 0.04, peak: 0.07, end: 0.07, warmup_iters: 0}"  # the YAML's values
    assert _temps(images, steps, official) == pytest.approx([0.07] * len(steps), abs=1e-12)


def test_a_configured_warm_up_follows_the_official_linspace(images) -> None:
    steps = [0, 1, 15, 29, 30, 64, 99]
    warm = "schedules.teacher_temp={start: 0.04, peak: 0.07, end: 0.07, warmup_iters: 30}"
    by_hand = [0.04 + 0.03 * i / 30 if i < 30 else 0.07 for i in steps]  # linspace(0.04, 0.07, 30, endpoint=False)
    assert _temps(images, steps, warm) == pytest.approx(by_hand, abs=1e-9)
