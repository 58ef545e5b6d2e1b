"""The losses' all-reduce / all-gather paths with gloo: one process (world size 1) and two processes."""

from __future__ import annotations

import pytest
import torch

from geodino.losses import IBOTPatchLoss, KoLeoLoss, KoLeoLossDistributed, sinkhorn_knopp
from tests.gloo import spawn_gloo


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 6, generator=g), torch.randn(7, 6, generator=g), torch.randn(8, 5, generator=g)


def _worker(rank: int, world: int) -> dict[str, torch.Tensor]:
    cls, patches, feats = _data()
    half = cls.shape[0] // world
    q = sinkhorn_knopp(cls[rank * half : (rank + 1) * half], 0.07)
    splits = [0, 3, 7] if world == 2 else [0, 7]  # uneven masked-patch counts across ranks
    mine = patches[splits[rank] : splits[rank + 1]]
    qi = IBOTPatchLoss(6).teacher_targets(mine, 0.07, n_masked_patches=torch.tensor([mine.shape[0]]))
    x = feats[rank * half : (rank + 1) * half].clone().requires_grad_(True)
    loss = KoLeoLossDistributed(group_size=8)(x)
    (loss / world).backward()
    return {"q": q, "qi": qi, "loss": loss.detach(), "grad": x.grad}


def _run(world: int) -> list[dict[str, torch.Tensor]]:
    return spawn_gloo(_worker, world=world)


def _reference() -> dict[str, torch.Tensor]:
    cls, patches, feats = _data()
    x = feats.clone().requires_grad_(True)
    loss = KoLeoLoss()(x)
    loss.backward()
    return {"q": sinkhorn_knopp(cls, 0.07), "qi": sinkhorn_knopp(patches, 0.07), "loss": loss.detach(), "grad": x.grad}


def test_world_size_one_group_equals_plain() -> None:
    ref = _reference()
    (out,) = _run(1)
    for key in ("q", "qi", "loss", "grad"):
        assert torch.allclose(out[key], ref[key], atol=1e-6), key


@pytest.mark.slow
def test_two_processes_equal_one_process_global_batch() -> None:
    ref = _reference()
    outs = _run(2)
    assert torch.allclose(torch.cat([o["q"] for o in outs]), ref["q"], atol=1e-6)
    assert torch.allclose(torch.cat([o["qi"] for o in outs]), ref["qi"], atol=1e-6)
    assert torch.allclose((outs[0]["loss"] + outs[1]["loss"]) / 2, ref["loss"], atol=1e-6)
    # gradients flow through the all-gather: each rank's grad equals the global-batch grad of its rows
    assert torch.allclose(torch.cat([o["grad"] for o in outs]), ref["grad"], atol=1e-6)
