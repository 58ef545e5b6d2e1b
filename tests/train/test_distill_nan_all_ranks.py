"""Distillation's NaN stop is agreed by every process (2 gloo CPU processes): a loss that is not finite on one rank
stops all of them before their optimizer step. Each rank used to check only its own loss, so the ranks whose loss
was finite stepped with the NaN gradients that DDP had all-reduced into theirs (the checkpoint writer could save
those weights) and then waited at the next collective for the process that had stopped."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from geodino.errors import TrainingError
from tests.gloo import spawn_gloo


class _Student(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone, self.dino_head, self.ibot_head = (
            torch.nn.Linear(2, 2),
            torch.nn.Linear(2, 2),
            torch.nn.Linear(2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ibot_head(self.dino_head(self.backbone(x)))


class _Arch(torch.nn.Module):
    """A stand-in for DistillMetaArch: one student weight; rank 1's loss is NaN at step 0."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.students = torch.nn.ModuleDict({"s": _Student()})
        self.weights = SimpleNamespace(dino_local=1.0)
        self.ema_updates = 0

    def forward_backward(self, batch, teacher_temp, global_batch_size):
        loss = self.students["s"](batch["global_crops"].flatten(1)[:, :2]).sum()
        if self.rank == 1:
            loss = loss * float("nan")
        loss.backward()
        return loss.detach(), {"loss": loss.detach()}

    def update_ema(self, momentum: float) -> None:
        self.ema_updates += 1


def _worker(rank: int, world: int) -> dict:
    from geodino.train.distill import build as b
    from geodino.train.distill import loop

    b.student_masks = lambda *args, **kwargs: {}  # the stand-in draws no masks
    arch = _Arch(rank)
    opt = torch.optim.SGD(arch.students.parameters(), lr=0.1)
    cfg = SimpleNamespace(
        train=SimpleNamespace(seed=0, precision="32-true", global_batch_size=2),
        optim=SimpleNamespace(clip_grad=0.0),
    )
    sched = SimpleNamespace(
        at=lambda s: {"lr": 0.1, "weight_decay": 0.0, "last_layer_lr": 0.1, "momentum": 0.9, "teacher_temp": 0.07}
    )
    run = SimpleNamespace(
        cfg=cfg,
        arch=arch,
        device=torch.device("cpu"),
        sched=sched,
        opt=opt,
        layout=SimpleNamespace(student_batch=1),
        patch=8,
        rank=rank,
        distributed=True,
    )
    batch = {"global_crops": torch.ones(2, 3, 8, 8), "local_crops": torch.ones(0, 3, 4, 4)}
    before = [p.detach().clone() for p in arch.students.parameters()]
    try:
        loop.train_step(run, 0, batch)
        outcome = "stepped"
    except TrainingError as err:
        outcome = f"stopped: {err}"
    stepped = any(not torch.equal(a, p) for a, p in zip(before, arch.students.parameters()))
    return {"outcome": outcome, "stepped": stepped, "ema": arch.ema_updates}


@pytest.mark.slow
def test_a_nan_loss_on_one_rank_stops_every_rank_before_the_step() -> None:
    got = spawn_gloo(_worker)
    for rank, r in enumerate(got):
        assert r["outcome"].startswith("stopped"), (rank, r)
        assert not r["stepped"] and r["ema"] == 0, (rank, r)
        assert "\n" not in r["outcome"]
    assert "loss is nan at step 0" in got[1]["outcome"]
    assert "another process" in got[0]["outcome"]  # the finite rank says why it stops
