"""A distillation checkpoint's optimizer numbers its parameters from 0 in its own groups: one AdamW over every
student when they are co-located, one per student when each has its own ranks. `placement_resume.load_by_name` maps
either into the other by parameter name (each saved group's `names`). Checked here on small students driven by the
same gradients in both placements: k steps in one placement, loaded by name into the other, N more steps, equal bit
for bit to k + N steps in the other placement alone (weights, EMA, AdamW moments)."""

from __future__ import annotations

import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from geodino.errors import CheckpointError
from geodino.train.distill.build import build_optimizer
from geodino.train.distill.placement_resume import load_by_name

NAMES = ("tiny", "small")
CFG = SimpleNamespace(
    optim=SimpleNamespace(
        layerwise_decay=0.9,
        patch_embed_lr_mult=0.2,
        dino_head_wd_multiplier=0.5,
        adamw_beta1=0.9,
        adamw_beta2=0.999,
        fused=None,
    )
)


def _student(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed + sum(map(ord, name)))
    width = 4 if name == "tiny" else 6
    st = nn.Module()
    st.backbone = nn.Sequential(nn.Linear(3, width), nn.LayerNorm(width))
    st.dino_head = nn.Linear(width, 5)
    st.ibot_head = nn.Linear(width, 5)
    return st


def _arch(names: tuple[str, ...], seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    arch = nn.Module()
    arch.students = nn.ModuleDict({n: _student(n, seed) for n in names})
    arch.students_ema = nn.ModuleDict({n: _student(n, seed) for n in names})
    for n in names:
        arch.students_ema[n].load_state_dict(arch.students[n].state_dict())
    return arch, build_optimizer(CFG, arch)


def _steps(arch: nn.Module, opt: torch.optim.Optimizer, first: int, last: int) -> None:
    """Steps first..last-1 with gradients drawn from (student, parameter, step) alone, as the same batch gives each
    student the same gradients in either placement."""
    for step in range(first, last):
        for g in opt.param_groups:
            g["lr"] = 1e-2 * g["lr_multiplier"]
            g["weight_decay"] = 0.04 * g["wd_multiplier"]
        for n, st in arch.students.items():
            for pn, p in st.named_parameters():
                gen = torch.Generator().manual_seed(zlib.crc32(f"{n}/{pn}/{step}".encode()))
                p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
        with torch.no_grad():
            for n, st in arch.students.items():
                for e, p in zip(arch.students_ema[n].parameters(), st.parameters(), strict=True):
                    e.mul_(0.9).add_(p, alpha=0.1)


def _ckpt(arch: nn.Module, opt: torch.optim.Optimizer, step: int) -> dict:
    return {
        "step": step,
        "students": {n: m.state_dict() for n, m in arch.students.items()},
        "students_ema": {n: m.state_dict() for n, m in arch.students_ema.items()},
        "optimizer": opt.state_dict(),
    }


def _same(a: nn.Module, oa: torch.optim.Optimizer, b: nn.Module, ob: torch.optim.Optimizer, name: str) -> None:
    for part in ("students", "students_ema"):
        sa, sb = getattr(a, part)[name].state_dict(), getattr(b, part)[name].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), (part, name)
    moments = {}
    for o in (oa, ob):
        named = {n: p for g in o.param_groups for n, p in zip(g["names"], g["params"], strict=True)}
        moments[o] = {n: o.state[p] for n, p in named.items() if n.startswith(f"{name}.")}
    ma, mb = moments[oa], moments[ob]
    assert ma.keys() == mb.keys() and len(ma) == 8
    assert all(torch.equal(ma[n][k], mb[n][k]) for n in ma for k in ("exp_avg", "exp_avg_sq", "step"))


def test_co_located_checkpoint_resumes_students_on_their_own_ranks_bit_for_bit(tmp_path: Path) -> None:
    both, opt = _arch(NAMES)
    _steps(both, opt, 0, 3)
    saved = _ckpt(both, opt, 3)
    for name in NAMES:
        alone, o_alone = _arch((name,))  # uninterrupted in the new placement
        _steps(alone, o_alone, 0, 5)
        resumed, o_res = _arch((name,), seed=1)  # other initial weights: loading must replace them
        assert load_by_name([saved], resumed, o_res, tmp_path) == 3
        _steps(resumed, o_res, 3, 5)
        _same(alone, o_alone, resumed, o_res, name)


def test_students_own_checkpoints_resume_co_located_bit_for_bit(tmp_path: Path) -> None:
    parts = []
    for name in reversed(NAMES):  # file order does not matter: matched by name
        alone, o_alone = _arch((name,))
        _steps(alone, o_alone, 0, 3)
        parts.append(_ckpt(alone, o_alone, 3))
    both, opt = _arch(NAMES)
    _steps(both, opt, 0, 5)
    resumed, o_res = _arch(NAMES, seed=1)
    assert load_by_name(parts, resumed, o_res, tmp_path) == 3
    _steps(resumed, o_res, 3, 5)
    for name in NAMES:
        _same(both, opt, resumed, o_res, name)


def test_plain_load_of_the_other_placement_does_not_fit() -> None:
    """Why the remap is needed: the co-located state has every student's groups, a student's own optimizer its own."""
    both, opt = _arch(NAMES)
    _steps(both, opt, 0, 1)
    _, o_alone = _arch(("small",))
    with pytest.raises(ValueError, match="different number of parameter groups"):
        o_alone.load_state_dict(opt.state_dict())


def test_missing_student_or_steps_that_differ_are_refused(tmp_path: Path) -> None:
    a, oa = _arch(("tiny",))
    _steps(a, oa, 0, 1)
    resumed, o_res = _arch(NAMES)
    with pytest.raises(CheckpointError, match=r"0 checkpoints of .* hold student 'small'"):
        load_by_name([_ckpt(a, oa, 1)], resumed, o_res, tmp_path)
    b, ob = _arch(("small",))
    _steps(b, ob, 0, 2)
    with pytest.raises(CheckpointError, match=r"different steps \[1, 2\]"):
        load_by_name([_ckpt(a, oa, 1), _ckpt(b, ob, 2)], resumed, o_res, tmp_path)
