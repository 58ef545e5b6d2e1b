"""Schedules: v1 cosine, v2 warmup-cosine-constant, ramps, and the Schedules object built from the recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.recipe import SSLConfig
from geodino.train.schedules import Schedules, cosine_schedule, linear_warmup_cosine_decay, lr_scale, ramp_schedule


def test_v1_cosine_values() -> None:
    s = cosine_schedule(1.0, 0.0, total_iters=6, warmup_iters=2, start_warmup_value=0.5)
    # warmup: linspace(0.5, 1, 2) = [0.5, 1]; cosine over 4: 0.5(1+cos(pi i/4))
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * i / 4)) for i in range(4)]
    assert s.tolist() == pytest.approx(expected)
    frozen = cosine_schedule(1.0, 0.0, total_iters=5, freeze_iters=2)
    assert frozen[:2].tolist() == [0.0, 0.0] and frozen[2] == 1.0


def test_v2_warmup_cosine_constant_tail() -> None:
    s = linear_warmup_cosine_decay(0.0, 1.0, 0.2, warmup_iterations=4, total_iterations=10, cosine_iterations=3)
    assert s[:4].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75])  # endpoint excluded
    assert s[4:7].tolist() == pytest.approx([1.0, 0.6, 0.2])  # cos over linspace(0, pi, 3)
    assert s[7:].tolist() == pytest.approx([0.2, 0.2, 0.2])
    const = linear_warmup_cosine_decay(0.0, 5e-5, 5e-5, 3, 8)
    assert const[3:].tolist() == pytest.approx([5e-5] * 5)  # DINOv3 7B: constant after warmup


def test_ramp_is_zero_then_cosine() -> None:
    r = ramp_schedule(0.0, 2.0, start_iter=3, ramp_iters=3, total_iters=8)
    assert r.tolist() == pytest.approx([0, 0, 0, 0.0, 1.0, 2.0, 2.0, 2.0])
    assert ramp_schedule(0.0, 1.5, 0, 0, 4).tolist() == [1.5] * 4  # high-res stage: constant weight


def test_schedules_from_default_recipe() -> None:
    cfg = SSLConfig()
    s = Schedules.build(cfg, total_iters=125_000, global_batch_size=1024)
    assert s.lr[0] == 0.0 and s.lr[12_499] == pytest.approx(1e-3) and s.lr[12_500] == pytest.approx(1e-3)
    assert s.lr[200_000] == pytest.approx(1e-6)  # past the end: the final value
    assert s.last_layer_lr[1249] == 0.0 and s.last_layer_lr[1250] == s.lr[1250]
    assert s.weight_decay[0] == pytest.approx(0.04) and s.weight_decay[124_999] == pytest.approx(0.4, rel=1e-3)
    assert s.momentum[0] == pytest.approx(0.992) and s.momentum[124_999] == pytest.approx(1.0, abs=1e-6)
    assert s.teacher_temp[0] == pytest.approx(0.04) and s.teacher_temp[37_499] == pytest.approx(0.07)
    assert s.teacher_temp[100_000] == pytest.approx(0.07)
    assert s.gram_weight[5] == 0.0 and s.dino_local_weight[5] == 1.0
    assert set(s.at(10)) == {
        "lr",
        "last_layer_lr",
        "weight_decay",
        "momentum",
        "teacher_temp",
        "dino_local_weight",
        "gram_weight",
    }


def test_gram_stage_like_official_7b() -> None:
    cfg = load_config(
        SSLConfig,
        None,
        [
            "schedules.kind=v2",
            "schedules.lr.peak=3e-5",
            "schedules.lr.end=3e-5",
            "schedules.lr.warmup_iters=10",
            "gram.use_loss=true",
            "gram.loss_weight=2.0",
            "gram.weight_start_iter=100",
            "gram.weight_ramp_iters=10",
            "dino.local_loss_weight=0.5",
            "dino.local_loss_weight_start_iter=100",
            "dino.local_loss_weight_ramp_iters=10",
            "optim.scaling_rule=sqrt_wrt_1024",
            "optim.freeze_last_layer_iters=5",
        ],
    )
    s = Schedules.build(cfg, total_iters=120, global_batch_size=4096)
    assert s.lr[50] == pytest.approx(3e-5 * 8)  # 4·sqrt(4096/1024) = 8
    assert s.gram_weight[99] == 0.0 and s.gram_weight[109] == pytest.approx(2.0) and s.gram_weight[105] > 0
    assert s.dino_local_weight[99] == 1.0 and s.dino_local_weight[119] == pytest.approx(0.5)


def test_bad_schedule_values_fail_with_key() -> None:
    with pytest.raises(ConfigError, match=r"schedules.lr: warmup_iters \+ cosine_iters \+ freeze_iters = 12500"):
        Schedules.build(SSLConfig(), total_iters=100)
    with pytest.raises(ConfigError, match=r"optim\.scaling_rule='cubic'"):
        lr_scale("cubic", 8)
    with pytest.raises(ConfigError, match=r"schedules\.kind='v3'"):
        load_config(SSLConfig, None, ["schedules.kind=v3"])
    assert np.isclose(lr_scale("linear_wrt_256", 512), 2.0)
