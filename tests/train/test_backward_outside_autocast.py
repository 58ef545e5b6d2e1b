"""The pretraining and distillation steps run their backward outside the step's autocast (bf16-mixed).

Lightning runs `training_step` inside the precision plugin's autocast, and distillation's step wraps
`forward_backward` in one: a backward called there ran under autocast, which casts the backward's matrix products
too, the float32 loss terms' included (the DINO einsum and the Gram matmul, tests/losses/test_losses_autocast.py).
torch recommends the backward outside autocast: each backward op then runs in the dtype of its forward op. CPU
autocast stands in for CUDA's (the same thread-local state reaches the backward)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer
from tests.train.standin import StandInArch, loader_factory, schedules


def _record_backward_autocast(param: torch.Tensor, seen: list[bool]) -> None:
    """Note, each time `param`'s gradient is computed, whether CPU autocast is on in the backward."""
    param.register_hook(lambda grad: seen.append(torch.is_autocast_enabled("cpu")) or grad)


class _ProbedArch(StandInArch):
    """The stand-in, noting whether its forward ran under autocast (so the test sees the step's autocast at all)."""

    def __init__(self) -> None:
        super().__init__()
        self.forward_autocast: list[bool] = []

    def forward(self, batch: dict[str, Any], iteration: int) -> tuple[torch.Tensor, dict[str, Any]]:
        self.forward_autocast.append(torch.is_autocast_enabled("cpu"))
        return super().forward(batch, iteration)


def test_pretraining_step_backward_runs_outside_bf16_autocast(tmp_path: Path) -> None:
    torch.manual_seed(0)
    arch = _ProbedArch()
    seen: list[bool] = []
    _record_backward_autocast(arch.student["dino_head"].last_layer.weight, seen)
    module = SSLModule(arch, schedules, loader_factory=loader_factory(), checkpoint_dir=tmp_path / "checkpoints")
    tcfg = TrainerConfig(max_steps=1, accelerator="cpu", precision="bf16-mixed", loggers=[], progress_bar=False)
    trainer, _ = build_trainer(tcfg, CheckpointConfig(every_n_steps=100, keep_last=1), tmp_path)
    trainer.fit(module)
    assert arch.forward_autocast == [True]  # the step's forward is under Lightning's bf16 autocast
    assert seen == [False]


def test_distillation_backward_runs_outside_bf16_autocast() -> None:
    from tests.train.test_distill_arch import _arch, _batch, _student

    arch = _arch({"a": _student("vit_tiny")})
    seen: list[bool] = []
    _record_backward_autocast(arch.students["a"].dino_head.last_layer.weight, seen)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what train.precision=bf16-mixed wraps the step in
        arch.forward_backward(_batch(1), teacher_temp=0.07)
    assert seen == [False]
