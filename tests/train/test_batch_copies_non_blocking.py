"""The mask tensors of a batch (pinned by the loader on CUDA) cross to the device with `non_blocking=True` in
distillation's step and the teacher-head warm-up: a blocking copy made the host wait for the GPU at each tensor
(4 per distillation step, 3 per warm-up step). Checked on the CPU by recording every `Tensor.to` of a batch
tensor: the flag is what is asserted, so the test fails if it is dropped."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from geodino.config import load_config
from tests.train.test_recipe_audit import _batch

SOURCE = "data.sources=[{type: images, paths: [/tmp], sensor: imagenet}]"
MASK_KEYS = ("masks", "mask_indices", "masks_weight")


class _Stop(Exception):
    """Raised where the step's forward would start: the copies before it are recorded by then."""


def _record_to(monkeypatch, batch: dict[str, Any]) -> dict[str, list[bool]]:
    """non_blocking of every `Tensor.to(device)` of one of `batch`'s tensors, by key (dtype casts not counted)."""
    by_id = {id(t): k for k, t in batch.items() if torch.is_tensor(t)}
    seen: dict[str, list[bool]] = {}
    real = torch.Tensor.to

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        target = args[0] if args else kwargs.get("device")
        if id(self) in by_id and isinstance(target, str | torch.device):
            seen.setdefault(by_id[id(self)], []).append(bool(kwargs.get("non_blocking", False)))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    return seen


def test_the_distillation_step_copies_the_masks_without_blocking(monkeypatch) -> None:
    from geodino.train.distill import DistillConfig
    from geodino.train.distill.loop import train_step

    batch = _batch(2, 2, 4)
    seen = _record_to(monkeypatch, batch)

    def forward_backward(*args: Any, **kwargs: Any) -> Any:
        raise _Stop

    p = torch.nn.Parameter(torch.zeros(1))
    run = SimpleNamespace(
        cfg=load_config(DistillConfig, None, [SOURCE]),
        arch=SimpleNamespace(weights=SimpleNamespace(), forward_backward=forward_backward),
        device=torch.device("cpu"),
        sched=SimpleNamespace(
            at=lambda s: {"lr": 1e-3, "weight_decay": 0.04, "last_layer_lr": 1e-3, "teacher_temp": 0.07}
        ),
        opt=torch.optim.AdamW([p]),
        layout=SimpleNamespace(student_batch=4),
        patch=8,
        rank=0,
    )
    with pytest.raises(_Stop):
        train_step(run, 0, batch)  # type: ignore[arg-type]
    for k in (*MASK_KEYS, "global_crops", "local_crops"):
        assert seen.get(k) == [True], (k, seen)


def test_the_head_warmup_copies_the_masks_without_blocking(monkeypatch) -> None:
    from geodino.losses.dino import DINOLoss
    from geodino.losses.ibot import IBOTPatchLoss
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.teacher_heads import _warmup_losses

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, depth=1, n_storage_tokens=0).eval()
    heads = torch.nn.ModuleDict({"dino_head": DINOHead(192, 16, 8, 4), "ibot_head": DINOHead(192, 12, 8, 4)})
    batch = _batch(2, 2, 4)
    seen = _record_to(monkeypatch, batch)
    loss, _, _ = _warmup_losses(model, heads, heads, batch, (DINOLoss(16), IBOTPatchLoss(12)), 0.07, 2, "cpu")
    assert torch.isfinite(loss)
    for k in (*MASK_KEYS, "global_crops", "local_crops"):
        assert seen.get(k) == [True], (k, seen)
