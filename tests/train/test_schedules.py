"""Schedules: v1 cosine, v2 warmup-cosine-constant, ramps, and the Schedules object built from the recipe."""

from __future__ import annotations

import math
import re

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
    with pytest.raises(ConfigError, match=r"schedules.lr: warmup_iters \+ freeze_iters \+ hold_iters = 12500"):
        Schedules.build(SSLConfig(), total_iters=100)
    with pytest.raises(ConfigError, match=r"optim\.scaling_rule='cubic'"):
        lr_scale("cubic", 8)
    with pytest.raises(ConfigError, match=r"schedules\.kind='v3'"):
        load_config(SSLConfig, None, ["schedules.kind=v3"])
    assert np.isclose(lr_scale("linear_wrt_256", 512), 2.0)


def test_hold_inserts_a_stable_phase_before_the_cosine() -> None:
    """warmup-stable-decay: `hold_iters` at the peak after the warmup, then the same cosine over what is left."""

    def cfg(*overrides: str) -> SSLConfig:
        return load_config(SSLConfig, None, ["optim.scaling_rule=none", "optim.freeze_last_layer_iters=0", *overrides])

    v1 = cfg("schedules.lr={start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 0.2, hold_iters: 0.5}")
    lr = Schedules.build(v1, total_iters=10).lr.values
    # warmup linspace(0, 1, 2), 5 held at 1, then v1's cosine over 3: 0.5(1 + cos(pi i / 3))
    expected = [0.0, 1.0] + [1.0] * 5 + [0.5 * (1 + math.cos(math.pi * i / 3)) for i in range(3)]
    assert lr.tolist() == pytest.approx(expected)
    v2 = cfg(
        "schedules.kind=v2",
        "schedules.lr={start: 0.0, peak: 1.0, end: 0.2, warmup_iters: 2, hold_iters: 3, cosine_iters: 3}",
    )
    lr2 = Schedules.build(v2, total_iters=10).lr.values
    assert lr2.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.6, 0.2, 0.2, 0.2])
    # the teacher momentum rises only at the end: flat 0.99 for 80 %, then a cosine to 0.999
    m = cfg("schedules.lr.warmup_iters=0", "schedules.momentum={start: 0.99, peak: 0.99, end: 0.999, hold_iters: 0.8}")
    mom = Schedules.build(m, total_iters=100).momentum.values
    assert (mom[:81] == 0.99).all() and mom[81] > 0.99
    assert mom[-1] == pytest.approx(0.999 - 0.009 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))  # v1: end excluded
    # a fraction of the run: the same shape at any length
    for n in (50, 1000):
        assert int((Schedules.build(m, total_iters=n).momentum.values == 0.99).sum()) == 8 * n // 10 + 1
    with pytest.raises(ConfigError, match=r"schedules\.lr\.hold_iters=1\.5"):
        Schedules.build(cfg("schedules.lr.hold_iters=1.5"), total_iters=10)
    too_long = cfg("schedules.lr.warmup_iters=4", "schedules.lr.hold_iters=7")
    with pytest.raises(ConfigError, match=r"hold_iters = 11 exceeds the run's 10 iterations"):
        Schedules.build(too_long, total_iters=10)


# --- fractional lengths, reference_iters and the official lr scaling -----------------------------------------------

_NAMES = ("lr", "last_layer_lr", "weight_decay", "momentum", "teacher_temp", "dino_local_weight", "gram_weight")


def _fraction_cfg(kind: str) -> SSLConfig:
    over = [
        f"schedules.kind={kind}",
        "schedules.lr.warmup_iters=0.1",
        "schedules.teacher_temp.warmup_iters=0.3",
        "optim.freeze_last_layer_iters=0.01",
        "gram.use_loss=true",
        "gram.loss_weight=2.0",
        "gram.weight_start_iter=0.8",
        "gram.weight_ramp_iters=0.1",
        "dino.local_loss_weight=0.5",
        "dino.local_loss_weight_start_iter=0.5",
        "dino.local_loss_weight_ramp_iters=0.25",
    ]
    if kind == "v2":
        over += ["schedules.lr.cosine_iters=0.6", "schedules.weight_decay.cosine_iters=1.0"]
    return load_config(SSLConfig, None, over)


def _assert_same_shape(short: Schedules, long: Schedules) -> None:
    """short[i] == long[round(i * N / n)] up to one step of the short schedule.

    Both runs sample the same curve, the short one every N/n long iterations. Each piece (warmup, cosine, ramp)
    is a linspace over its own length, so a point at relative position i/n sits at phase i/(m-1) of an m-point
    piece in the short run and j/(M-1) ~ i/(m-1) - O(1/m) in the long one (plus the rounding of j, 0.5/M). The
    gap is at most one sample spacing of the short piece, so the difference is bounded by the larger of the two
    neighbouring steps of the short schedule itself: the finest a 600-point schedule can resolve the shape.
    """
    n, N = short.total_iters, long.total_iters
    for name in _NAMES:
        s, lv = getattr(short, name).values, getattr(long, name).values
        assert len(s) == n and len(lv) == N
        j = np.floor(np.arange(n) * N / n + 0.5).astype(int)
        step = np.abs(np.diff(s))
        tol = np.maximum(np.concatenate([[0.0], step]), np.concatenate([step, [0.0]])) + 1e-12
        err = np.abs(s - lv[j])
        assert (err <= tol).all(), (name, int(np.argmax(err - tol)), float(np.max(err - tol)))


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_fractional_schedules_follow_the_same_shape(kind: str) -> None:
    cfg = _fraction_cfg(kind)
    short = Schedules.build(cfg, total_iters=600)
    long = Schedules.build(cfg, total_iters=125_000)
    _assert_same_shape(short, long)
    for s, n in ((short, 600), (long, 125_000)):
        lr = s.lr.values
        # warmup ends (the lr reaches its peak) at the same relative position: 10 % of the run
        assert int(np.argmax(lr >= 1e-3)) + (1 if kind == "v1" else 0) == n // 10
        assert int((s.last_layer_lr.values == 0).sum()) == n // 100  # frozen for 1 % (lr[0] = 0 lies inside)
        assert int((s.gram_weight.values == 0).sum()) == 8 * n // 10 + 1  # 0 until 80 %, the ramp starts at 0
        assert s.gram_weight[9 * n // 10] == pytest.approx(2.0) and s.dino_local_weight[3 * n // 4] == 0.5
        assert s.teacher_temp[3 * n // 10] == pytest.approx(0.07) and s.teacher_temp[3 * n // 10 - 2] < 0.07
    # hand-computed v1 short-run values: warmup 60 points linspace(0, 1e-3), cosine over the other 540
    if kind == "v1":
        assert short.lr[30] == pytest.approx(1e-3 * 30 / 59) and short.lr[60] == pytest.approx(1e-3)
        assert short.lr[330] == pytest.approx(1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + math.cos(math.pi * 270 / 540)))


def test_reference_iters_runs_an_official_config_short() -> None:
    official = SSLConfig()  # lengths written for 125 000 iterations: warmup 12 500, teacher temp 37 500, freeze 1 250
    cfg = load_config(SSLConfig, None, ["schedules.reference_iters=125000"])
    short = Schedules.build(cfg, total_iters=600)
    # 12 500 / 125 000 x 600 = 60, 37 500 -> 180, 1 250 -> 6: exactly the official calls with those lengths
    assert np.array_equal(short.lr.values, cosine_schedule(1e-3, 1e-6, 600, 60, 0.0))
    assert np.array_equal(short.teacher_temp.values[:180], cosine_schedule(0.07, 0.07, 180, 180, 0.04))
    assert (short.teacher_temp.values[180:] == 0.07).all()  # the official schedule's final value past its end
    assert np.array_equal(short.weight_decay.values, cosine_schedule(0.04, 0.4, 600))
    assert (short.last_layer_lr.values[:6] == 0).all() and short.last_layer_lr[6] == short.lr[6] > 0
    _assert_same_shape(short, Schedules.build(official, total_iters=125_000))
    # reference_iters equal to the run length, or unset, changes nothing
    same = Schedules.build(cfg, total_iters=125_000)
    base = Schedules.build(official, total_iters=125_000)
    for name in _NAMES:
        assert np.array_equal(getattr(same, name).values, getattr(base, name).values)
    # halves round up, exactly (integer arithmetic): 1 250 x 100 / 125 000 = 1, 12 500 x 100 / 125 000 = 10
    tiny = Schedules.build(cfg, total_iters=100)
    assert int((tiny.last_layer_lr.values == 0).sum()) == 1 and tiny.lr[9] == pytest.approx(1e-3)


def test_integer_configs_are_bit_identical_to_the_official_calls() -> None:
    s = Schedules.build(SSLConfig(), total_iters=125_000)
    assert np.array_equal(s.lr.values, cosine_schedule(1e-3, 1e-6, 125_000, 12_500, 0.0, 0, 0.0))
    assert np.array_equal(s.weight_decay.values, cosine_schedule(0.04, 0.4, 125_000))
    assert np.array_equal(s.momentum.values, cosine_schedule(0.992, 1.0, 125_000))
    expected_last = cosine_schedule(1e-3, 1e-6, 125_000, 12_500)
    expected_last[:1250] = 0
    assert np.array_equal(s.last_layer_lr.values, expected_last)
    # the v1 teacher temperature is its own warmup-long schedule: a run shorter than 37 500 stops inside it
    assert np.array_equal(s.teacher_temp.values[:37_500], cosine_schedule(0.07, 0.07, 37_500, 37_500, 0.04))
    short = Schedules.build(SSLConfig(), total_iters=20_000)
    assert np.array_equal(short.teacher_temp.values, cosine_schedule(0.07, 0.07, 37_500, 37_500, 0.04)[:20_000])
    v2 = load_config(
        SSLConfig,
        None,
        [
            "schedules.kind=v2",
            "schedules.lr={start: 0.0, peak: 5e-5, end: 5e-5, warmup_iters: 100}",
            "schedules.teacher_temp={start: 0.04, peak: 0.07, end: 0.07, warmup_iters: 100}",
            "schedules.weight_decay={start: 0.04, peak: 0.04, end: 0.2, warmup_iters: 0, cosine_iters: 300}",
            "optim.freeze_last_layer_iters=5",
        ],
    )
    t = Schedules.build(v2, total_iters=1000)
    assert np.array_equal(t.lr.values, linear_warmup_cosine_decay(0.0, 5e-5, 5e-5, 100, 1000))
    assert np.array_equal(t.teacher_temp.values, linear_warmup_cosine_decay(0.04, 0.07, 0.07, 100, 1000))
    assert np.array_equal(t.weight_decay.values, linear_warmup_cosine_decay(0.04, 0.04, 0.2, 0, 1000, 300))


def test_lr_scaling_rule_scales_what_the_official_code_scales() -> None:
    # sqrt_wrt_1024 at global batch 2048: 4 x sqrt(2048 / 1024) = 4 sqrt(2) = 5.656854...
    assert lr_scale("sqrt_wrt_1024", 2048) == pytest.approx(5.656854249492381)
    cfg = load_config(SSLConfig, None, ["optim.scaling_rule=sqrt_wrt_1024", "schedules.lr.start=1e-4"])
    s = Schedules.build(cfg, total_iters=125_000, global_batch_size=2048)
    # v1 (official `apply_scaling_rules_to_cfg`): only optim.lr (the peak) is scaled; min_lr and the start are not
    assert s.lr[12_499] == pytest.approx(5.656854249492381e-3) and s.lr[0] == 1e-4
    assert s.lr.final == 1e-6 and s.lr[124_999] == pytest.approx(1e-6, rel=1e-3)  # ViT-L: 1e-6, not 5.66e-6
    assert np.array_equal(s.lr.values, cosine_schedule(1e-3 * 4 * math.sqrt(2), 1e-6, 125_000, 12_500, 1e-4))
    # v2 (official `build_schedulers_v2`): peak and end are scaled, start is not
    cfg2 = load_config(
        SSLConfig,
        None,
        ["optim.scaling_rule=sqrt_wrt_1024", "schedules.kind=v2", "schedules.lr.start=1e-4", "schedules.lr.end=1e-5"],
    )
    s2 = Schedules.build(cfg2, total_iters=125_000, global_batch_size=2048)
    k = 4 * math.sqrt(2)
    assert s2.lr[0] == 1e-4 and s2.lr.final == pytest.approx(1e-5 * 5.656854249492381)
    assert np.array_equal(s2.lr.values, linear_warmup_cosine_decay(1e-4, 1e-3 * k, 1e-5 * k, 12_500, 125_000))
    # linear_wrt_256 at 512: x2 on the peak only (v1)
    s3 = Schedules.build(
        load_config(SSLConfig, None, ["optim.scaling_rule=linear_wrt_256"]), total_iters=125_000, global_batch_size=512
    )
    assert s3.lr[12_499] == pytest.approx(2e-3) and s3.lr.final == 1e-6


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("schedules.lr.warmup_iters=12500.0", "schedules.lr.warmup_iters"),
        ("schedules.teacher_temp.warmup_iters=1.5", "schedules.teacher_temp.warmup_iters"),
        ("schedules.momentum.freeze_iters=-0.1", "schedules.momentum.freeze_iters"),
        ("schedules.weight_decay.cosine_iters=300.0", "schedules.weight_decay.cosine_iters"),
        ("optim.freeze_last_layer_iters=1250.0", "optim.freeze_last_layer_iters"),
        ("dino.local_loss_weight_start_iter=2.5", "dino.local_loss_weight_start_iter"),
        ("dino.local_loss_weight_ramp_iters=100.0", "dino.local_loss_weight_ramp_iters"),
        ("gram.weight_start_iter=1000000.0", "gram.weight_start_iter"),
        ("gram.weight_ramp_iters=1.01", "gram.weight_ramp_iters"),
    ],
)
def test_bad_length_floats_fail_naming_the_key(override: str, key: str) -> None:
    cfg = load_config(SSLConfig, None, [override, "gram.use_loss=true", "schedules.kind=v2"])
    msg = rf"{re.escape(key)}=.*write an integer for iterations or a fraction in \[0, 1\]"
    with pytest.raises(ConfigError, match=msg):
        Schedules.build(cfg, total_iters=2_000_000)


def test_fraction_edge_cases_and_yaml(tmp_path) -> None:
    # YAML floats are accepted for these keys and stay floats; ints stay ints
    path = tmp_path / "frac.yaml"
    path.write_text(
        "schedules:\n  lr: {peak: 1.0e-3, warmup_iters: 0.1}\n  teacher_temp: {warmup_iters: 300}\n"
        "optim: {freeze_last_layer_iters: 0.02}\ngram: {weight_start_iter: 0.5}\n"
    )
    cfg = load_config(SSLConfig, path)
    assert cfg.schedules.lr.warmup_iters == 0.1 and isinstance(cfg.schedules.lr.warmup_iters, float)
    assert isinstance(cfg.schedules.teacher_temp.warmup_iters, int) and isinstance(cfg.gram.weight_start_iter, float)
    s = Schedules.build(cfg, total_iters=1000)
    assert int((s.last_layer_lr.values == 0).sum()) == 20 and s.lr[99] == pytest.approx(1e-3)
    # 1.0 is the whole run (a float), 1 is one iteration (an int)
    whole = Schedules.build(
        load_config(SSLConfig, None, ["schedules.lr.warmup_iters=1.0", "optim.freeze_last_layer_iters=0"]),
        total_iters=50,
    )
    one = Schedules.build(
        load_config(SSLConfig, None, ["schedules.lr.warmup_iters=1", "optim.freeze_last_layer_iters=0"]), total_iters=50
    )
    assert whole.lr[49] == pytest.approx(1e-3) and whole.lr[1] == pytest.approx(1e-3 / 49)  # 50-point warmup
    assert one.lr[0] == 0.0 and one.lr[1] == pytest.approx(1e-3)  # linspace(0, peak, 1) = [0], then the peak
    # fractions summing to 1 never overshoot the run through rounding (0.5 x 5 = 2.5 -> 3 twice)
    halves = load_config(
        SSLConfig,
        None,
        [
            "schedules.kind=v2",
            "schedules.lr.warmup_iters=0.5",
            "schedules.lr.cosine_iters=0.5",
            "optim.freeze_last_layer_iters=0",
        ],
    )
    assert len(Schedules.build(halves, total_iters=5).lr) == 5
    too_much = load_config(
        SSLConfig, None, ["schedules.kind=v2", "schedules.lr.warmup_iters=0.6", "schedules.lr.cosine_iters=0.6"]
    )
    with pytest.raises(
        ConfigError, match=r"schedules\.lr: warmup_iters \+ cosine_iters \+ freeze_iters \+ hold_iters = 12"
    ):
        Schedules.build(too_much, total_iters=10)
    with pytest.raises(ConfigError, match=r"schedules\.reference_iters=0 must be a positive integer"):
        Schedules.build(load_config(SSLConfig, None, ["schedules.reference_iters=0"]), total_iters=10)
    with pytest.raises(ConfigError, match=r"schedules\.reference_iters"):
        load_config(SSLConfig, None, ["schedules.reference_iters=1.5"])
