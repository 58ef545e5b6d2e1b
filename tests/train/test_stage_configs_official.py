"""The shipped 7B and ViT-L stage configs carry the official values (dinov3/configs/train/*.yaml, read at commit
6876159), and their schedules equal the official formulas (train/train.py build_schedulers{,_v2},
cosine_lr_scheduler.py) written out here in numpy, at the configs' global batch sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geodino.config import load_config
from geodino.train.config import PretrainConfig
from geodino.train.schedules import Schedules


def _cfg(name: str) -> PretrainConfig:
    return load_config(PretrainConfig, name)


def test_7b_stage_values() -> None:
    pre, gram, hr = _cfg("vit7b16_pretrain"), _cfg("vit7b16_gram"), _cfg("vit7b16_highres")
    for c in (pre, gram, hr):
        o = c.ssl.optim
        assert (o.clip_grad, o.layerwise_decay, o.adamw_beta2, o.patch_embed_lr_mult) == (30.0, 0.98, 0.99, 0.2)
        assert o.scaling_rule == "sqrt_wrt_1024" and c.ssl.student.drop_path_rate == 0.4
        assert c.ssl.ibot.mask_ratio_min_max == [0.1, 0.5] and c.ssl.ibot.mask_sample_probability == 0.5
        assert c.crops.n_local == 8 and c.crops.flips is False and c.ssl.koleo.loss_weight == 0.1
    assert (pre.crops.global_size, pre.crops.local_size, pre.trainer.max_steps) == (256, 112, 1_000_000)
    assert pre.batch_size * pre.trainer.devices * pre.trainer.num_nodes == 4096
    assert not pre.ssl.gram.use_loss and pre.ssl.optim.freeze_last_layer_iters == 5000
    g = gram.ssl.gram
    assert (gram.crops.gram_size, gram.trainer.max_steps, g.loss_weight, g.update_frequency, g.max_updates) == (
        512,
        200_000,
        2.0,
        10_000,
        3,
    )
    assert g.img_level and g.rep_update and gram.ssl.dino.local_loss_weight == 0.5
    assert (hr.batch_size, hr.trainer.max_steps, hr.ssl.gram.loss_weight, hr.ssl.gram.rep_update) == (
        8,
        30_000,
        1.5,
        False,
    )
    assert (hr.ssl.koleo.distributed, hr.ssl.koleo.group_size) == (True, 16)
    sets = [(c.global_size, c.local_size, c.gram_size, c.probability) for c in hr.crops.crop_sets]
    assert sets == [
        (512, 112, 768, 0.3),
        (768, 112, 1152, 0.3),
        (768, 168, 1152, 0.3),
        (768, 224, 1152, 0.05),
        (768, 336, 1152, 0.05),
    ]


def test_vitl16_values() -> None:
    c = _cfg("vitl16_pretrain")
    o = c.ssl.optim
    assert (o.clip_grad, o.layerwise_decay, o.adamw_beta2, o.freeze_last_layer_iters) == (3.0, 0.9, 0.999, 1250)
    assert (c.crops.global_size, c.crops.local_size, c.crops.n_local, c.trainer.max_steps) == (224, 96, 8, 125_000)
    assert c.batch_size * c.trainer.devices * c.trainer.num_nodes == 2048
    assert c.trainer.activation_checkpointing == "off"  # official train.checkpointing: false


def _built(c: PretrainConfig) -> Schedules:
    return Schedules.build(c.ssl, c.trainer.max_steps, c.batch_size * c.trainer.devices * c.trainer.num_nodes)


def _cos(a: float, b: float, n: int) -> np.ndarray:
    """v1 cosine a -> b over n iterations (CosineScheduler: cos(pi i / n), i < n)."""
    return b + 0.5 * (a - b) * (1 + np.cos(np.pi * np.arange(n) / n))


def test_vitl16_v1_schedules_equal_the_official_formulas() -> None:
    s = _built(_cfg("vitl16_pretrain"))
    T, W = 125_000, 12_500
    peak = 1e-3 * 4 * math.sqrt(2048 / 1024)  # sqrt_wrt_1024 scales optim.lr only
    lr = np.concatenate([np.linspace(0, peak, W), _cos(peak, 1e-6, T - W)])
    last = lr.copy()
    last[:1250] = 0
    tt = np.concatenate([np.linspace(0.04, 0.07, 37_500), np.full(T - 37_500, 0.07)])
    expected = {
        "lr": lr,
        "last_layer_lr": last,
        "weight_decay": _cos(0.04, 0.4, T),
        "momentum": _cos(0.992, 1.0, T),
        "teacher_temp": tt,
    }
    for key, want in expected.items():
        np.testing.assert_allclose(getattr(s, key).values, want, rtol=0, atol=1e-15, err_msg=key)
    assert s.lr[W - 1] == pytest.approx(peak) and s.lr[T] == 1e-6  # past the end: min_lr


def test_7b_v2_schedules_equal_the_official_formulas() -> None:
    s = _built(_cfg("vit7b16_pretrain"))
    peak = 5e-5 * 4 * math.sqrt(4096 / 1024)  # 4e-4
    lr = np.concatenate([np.linspace(0, peak, 100_000, endpoint=False), np.full(900_000, peak)])
    np.testing.assert_allclose(s.lr.values, lr, rtol=1e-12)
    assert s.last_layer_lr.values[:5000].max() == 0 and s.last_layer_lr[5000] == s.lr[5000]
    tt = np.concatenate([np.linspace(0.04, 0.07, 100_000, endpoint=False), np.full(900_000, 0.07)])
    np.testing.assert_allclose(s.teacher_temp.values, tt, rtol=1e-12)
    assert set(s.momentum.values) == {0.994} and set(s.weight_decay.values) == {0.04}

    hr = _built(_cfg("vit7b16_highres"))  # 8 x 8 GPUs x 32 nodes = 2048
    end = 1.25e-5 * 4 * math.sqrt(2048 / 1024)
    ramp = (0 - end) * (np.cos(np.linspace(0, np.pi, 10_000)) + 1) / 2 + end
    np.testing.assert_allclose(hr.lr.values, np.concatenate([ramp, np.full(20_000, end)]), rtol=1e-12, atol=1e-20)
    assert set(hr.gram_weight.values) == {1.5} and set(hr.dino_local_weight.values) == {0.5}

    gr = _built(_cfg("vit7b16_gram"))  # official iterations 1M .. 1.2M: ramps start at 1M, over 1k
    ramp = (np.cos(np.linspace(0, np.pi, 1000)) + 1) / 2
    np.testing.assert_allclose(gr.gram_weight.values[:1000], 2.0 * (1 - ramp), atol=1e-15)
    np.testing.assert_allclose(gr.dino_local_weight.values[:1000], 0.5 + 0.5 * ramp, atol=1e-15)
    assert gr.gram_weight[199_999] == 2.0 and set(gr.lr.values) == {3e-5 * 4 * math.sqrt(4096 / 1024)}
