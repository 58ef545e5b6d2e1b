"""The teacher-head warm-up's step copies nothing from the host with a blocking copy (each waits for the GPU).

tests/train/test_batch_copies_non_blocking.py checks the crops and masks by their `Tensor.to` calls; the masked
count (`n_masked_patches`) reached Sinkhorn-Knopp as a host tensor and was copied there by `torch.as_tensor`, a
blocking copy in the middle of every warm-up step. On the meta device every host-to-device copy shows up as an
aten `_to_copy` with its `non_blocking` flag, whoever makes it."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from geodino.losses.dino import DINOLoss
from geodino.losses.ibot import IBOTPatchLoss
from geodino.models import build_model
from geodino.models.heads import DINOHead
from geodino.train.teacher_heads import _warmup_losses
from tests.train.test_recipe_audit import _batch


class _BlockingHostCopies(TorchDispatchMode):
    """Records the shape of every blocking copy of a host tensor to another device."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kw = kwargs or {}
        if func is torch.ops.aten._to_copy.default and args[0].device.type == "cpu":
            target = kw.get("device")
            if target is not None and target.type != "cpu" and not kw.get("non_blocking", False):
                self.shapes.append(tuple(args[0].shape))
        return func(*args, **kw)


def test_warmup_step_makes_no_blocking_host_copy() -> None:
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, depth=1, n_storage_tokens=0).eval().to("meta")
    heads = torch.nn.ModuleDict({"dino_head": DINOHead(192, 16, 8, 4), "ibot_head": DINOHead(192, 12, 8, 4)})
    heads = heads.to("meta")
    batch = _batch(2, 2, 4)  # the loader's batch: host tensors, crops, masks and the masked count
    assert torch.is_tensor(batch["n_masked_patches"]) and batch["n_masked_patches"].device.type == "cpu"
    with _BlockingHostCopies() as copies:
        loss, _, _ = _warmup_losses(
            model, heads, copy.deepcopy(heads), batch, (DINOLoss(16), IBOTPatchLoss(12)), 0.07, 2, "meta"
        )
    assert loss.device.type == "meta"
    assert copies.shapes == []
