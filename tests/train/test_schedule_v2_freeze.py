"""`schedules.*.freeze_iters` under `schedules.kind=v2`: zeros first, then the whole warmup, as v1. The v2 build
wrote the zeros over the warmup's first iterations, so with `freeze < warmup` the value jumped from 0 to a part of
the peak (0 -> 0.5 of it for freeze 2, warmup 4) and the warmup lost `freeze` iterations, while the length check
counted the frozen iterations apart (warmup 4 + cosine 6 + freeze 2 'fit' 12 iterations and left a 2-step tail)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.train.schedules import Schedules, linear_warmup_cosine_decay
from tests.train.ssl_fixtures import tiny_cfg


def _lr(kind: str, extra: str = "") -> np.ndarray:
    cfg = tiny_cfg(
        f"schedules.kind={kind}",
        "schedules.lr={start: 0.0, peak: 1.0, end: 0.0, warmup_iters: 4, freeze_iters: 2" + extra + "}",
        "optim.freeze_last_layer_iters=0",
    )
    return Schedules.build(cfg, 12, 1024).lr.values


def test_v2_freeze_comes_before_a_whole_warmup() -> None:
    lr = _lr("v2")
    # by hand: 2 zeros, warmup 0, .25, .5, .75 (endpoint excluded, official v2), cosine 1 -> 0 over the 6 left
    cosine = [(1 + np.cos(np.pi * k / 5)) / 2 for k in range(6)]
    np.testing.assert_allclose(lr, [0, 0, 0, 0.25, 0.5, 0.75, *cosine], atol=1e-12)
    np.testing.assert_allclose(lr[2:], linear_warmup_cosine_decay(0.0, 1.0, 0.0, 4, 10), atol=1e-12)
    # the length check's accounting: warmup 4 + cosine 6 + freeze 2 = 12 is the whole run, no constant tail
    np.testing.assert_allclose(_lr("v2", ", cosine_iters: 6"), lr, atol=1e-12)
    held = _lr("v2", ", hold_iters: 2")
    np.testing.assert_allclose(held[:6], lr[:6], atol=1e-12)
    assert held[6] == held[7] == held[8] == pytest.approx(1.0)


def test_v1_and_v2_freeze_the_same_iterations() -> None:
    v1, v2 = _lr("v1"), _lr("v2")
    assert (v1[:2] == 0).all() and (v2[:2] == 0).all()
    assert v1[2] == v2[2] == 0.0 and v1[3] > 0 and v2[3] > 0  # each warmup starts at `start` right after
