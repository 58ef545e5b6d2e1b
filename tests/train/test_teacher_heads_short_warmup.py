"""A heads warm-up shorter than 10 steps learns from its first step. Its linear lr warm-up was max(steps // 10, 1)
iterations long, and a one-iteration linear ramp is lr 0 (`np.linspace(0, lr, 1)`): the first step never moved
the heads, so `teacher.head_warmup_steps=1` returned the random heads unchanged (their EMA, momentum 0 under the
1 - 10/steps start, is a copy of them) while the run said '0.00% of the random init left'. The ramp is now
steps // 10 iterations (10 %, none under 10 steps); from 10 steps on the schedule is the same as before."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import geodino.train.optim as optim
from geodino.train.teacher_heads import warmup_heads
from tests.train.test_distill_arch import _batch, _heads, _vit


def _run(steps: int, monkeypatch) -> tuple[list[float], dict, dict]:
    lrs: list[float] = []
    real = optim.apply_optim_schedule
    monkeypatch.setattr(
        optim, "apply_optim_schedule", lambda opt, lr, wd, last: lrs.append(lr) or real(opt, lr, wd, last)
    )
    torch.manual_seed(0)
    backbone = _vit("vit_tiny", depth=1)
    dino, ibot = _heads(backbone.embed_dim)
    init = copy.deepcopy(dino.state_dict())
    d, _, _ = warmup_heads(backbone, map(_batch, itertools.count()), steps=steps, dino=dino, ibot=ibot, progress=False)
    return lrs, init, d.state_dict()


def test_a_one_step_warmup_moves_the_heads(monkeypatch) -> None:
    lrs, init, out = _run(1, monkeypatch)
    assert lrs == [pytest.approx(1e-3)]  # was [0.0]: the only step did nothing
    changed = [k for k in init if not torch.equal(init[k], out[k])]
    assert "last_layer.weight" in changed and "mlp.0.weight" in changed


@pytest.mark.parametrize("steps", [2, 5, 9])
def test_no_step_of_a_short_warmup_is_spent_at_lr_0(monkeypatch, steps) -> None:
    lrs, _, _ = _run(steps, monkeypatch)
    assert len(lrs) == steps and min(lrs) > 0 and lrs[0] == pytest.approx(1e-3)
    assert lrs == sorted(lrs, reverse=True)  # the cosine from the peak down


def test_from_ten_steps_on_the_ramp_is_unchanged(monkeypatch) -> None:
    lrs, _, _ = _run(20, monkeypatch)
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(1e-3)  # 2 ramp iterations (10 %): 0, then the peak
    assert max(lrs) == pytest.approx(1e-3) and lrs[-1] > 1e-5
