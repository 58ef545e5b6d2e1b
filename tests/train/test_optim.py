"""Parameter groups: lr/wd multipliers per parameter, last-layer flag, fused groups, clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geodino.models import build_model
from geodino.models.heads import DINOHead
from geodino.train.optim import apply_optim_schedule, build_optimizer, clip_grad_per_module, layer_id, param_groups
from tests.helpers import HostReads


@pytest.fixture(scope="module")
def student() -> nn.ModuleDict:
    bb = build_model("vit_tiny", depth=3)
    return nn.ModuleDict({"backbone": bb, "dino_head": DINOHead(192, 16, 8, 4), "ibot_head": DINOHead(192, 12, 8, 4)})


def _per_param(groups: list[dict]) -> dict[str, tuple[float, float, bool]]:
    out = {}
    for g in groups:
        for n in g["names"]:
            out[n] = (g["lr_multiplier"], g["wd_multiplier"], g["is_last_layer"])
    return out


def test_multipliers_per_parameter(student: nn.ModuleDict) -> None:
    r, L = 0.9, 3
    m = _per_param(param_groups(student, layerwise_decay=r, patch_embed_lr_mult=0.2, dino_head_wd_multiplier=0.5))
    assert m["backbone.patch_embed.proj.weight"] == pytest.approx((0.2 * r ** (L + 1), 1.0, False))
    assert m["backbone.patch_embed.proj.bias"] == pytest.approx((0.2 * r ** (L + 1), 0.0, False))
    assert m["backbone.cls_token"] == pytest.approx((r ** (L + 1), 1.0, False))  # tokens get wd, as official
    assert m["backbone.storage_tokens"] == pytest.approx((r ** (L + 1), 1.0, False))
    assert m["backbone.mask_token"] == pytest.approx((r ** (L + 1), 1.0, False))
    assert m["backbone.blocks.0.attn.qkv.weight"] == pytest.approx((r**L, 1.0, False))
    assert m["backbone.blocks.2.mlp.fc1.weight"] == pytest.approx((r**1, 1.0, False))
    assert m["backbone.blocks.1.ls1.gamma"] == pytest.approx((r**2, 0.0, False))
    assert m["backbone.blocks.1.norm1.weight"] == pytest.approx((r**2, 0.0, False))
    assert m["backbone.norm.weight"] == pytest.approx((1.0, 0.0, False))
    assert m["dino_head.mlp.0.weight"] == pytest.approx((1.0, 0.5, False))
    assert m["dino_head.mlp.0.bias"] == pytest.approx((1.0, 0.0, False))
    assert m["dino_head.last_layer.weight"] == pytest.approx((1.0, 0.5, True))
    assert m["ibot_head.last_layer.weight"] == pytest.approx((1.0, 1.0, True))
    n_params = sum(1 for p in student.parameters() if p.requires_grad)
    assert len(m) == n_params


def test_names_survive_wrappers() -> None:
    assert layer_id("blocks.4._orig_mod.attn.qkv.weight", 12) == 5
    assert layer_id("patch_embed.proj.weight", 12) == 0
    assert layer_id("local_cls_norm.weight", 12) == 13
    from geodino.train.optim import clean_param_name

    assert clean_param_name("blocks.0._fsdp_wrapped_module._checkpoint_wrapped_module.norm1.weight") == (
        "blocks.0.norm1.weight"
    )


def test_optimizer_schedule_and_last_layer_freeze(student: nn.ModuleDict) -> None:
    groups = param_groups(student)
    opt = build_optimizer(groups, betas=(0.9, 0.99))
    assert opt.defaults["fused"] and not opt.defaults.get("foreach")  # CPU parameters: the fused kernel
    assert build_optimizer(groups, fused=False).defaults["foreach"]
    apply_optim_schedule(opt, lr=1e-3, wd=0.04, last_layer_lr=0.0)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(0.0 if g["is_last_layer"] else 1e-3 * g["lr_multiplier"])
        assert g["weight_decay"] == pytest.approx(0.04 * g["wd_multiplier"])
    last = student["dino_head"].last_layer.weight
    before = last.detach().clone()
    x = torch.randn(2, 3, 32, 32)
    out = student["backbone"](x)
    (student["dino_head"](out).sum() + student["ibot_head"](out).sum()).backward()
    opt.step()
    assert torch.equal(last, before)  # frozen prototypes: lr 0 and (for AdamW) wd·lr = 0


def test_clip_per_module() -> None:
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    for p in a.parameters():
        p.grad = torch.full_like(p, 10.0)
    for p in b.parameters():
        p.grad = torch.full_like(p, 0.01)
    with HostReads() as reads:
        norms = clip_grad_per_module({"a": a, "b": b}, max_norm=1.0)
    assert reads.n == 0  # the norms stay tensors: no host read (a GPU sync) per module per step
    assert float(norms["a"]) == pytest.approx(10.0 * 12**0.5, rel=1e-5)
    total_a = torch.sqrt(sum((p.grad**2).sum() for p in a.parameters()))
    assert float(total_a) == pytest.approx(1.0, rel=1e-4)
    assert b.weight.grad[0, 0] == pytest.approx(0.01)  # the small module is not rescaled by the big one
