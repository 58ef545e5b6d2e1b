"""AdamW parameter groups of the DINOv3 recipe, the per-iteration lr/wd application, and gradient clipping.

Mirrors `dinov3/train/param_groups.py`:
- layer-wise lr decay: multiplier rate^(L+1-id) with patch_embed, cls/storage/mask tokens at id 0, block i at id
  i+1, and everything else (final norms, heads) at id L+1 (multiplier 1);
- `patch_embed` lr multiplied by `patch_embed_lr_mult` (0.2);
- no weight decay on biases, any `*norm*` parameter and LayerScale `gamma`; the learned tokens *do* get wd;
- `last_layer` (prototype) parameters are flagged `is_last_layer`, so their lr can be held at 0 while frozen;
- groups with equal (lr_multiplier, wd_multiplier, is_last_layer) are fused into one (fewer, larger kernels).
Names are cleaned of FSDP/compile/checkpoint wrappers, so the groups are identical after `fully_shard` or
`torch.compile`, and parameters are collected by name, never by identity across modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "apply_optim_schedule",
    "build_optimizer",
    "clean_param_name",
    "clip_grad_per_module",
    "key_by_module_order",
    "layer_id",
    "param_groups",
]

_TOKENS = ("patch_embed", "cls_token", "storage_tokens", "register_tokens", "mask_token", "pos_embed")


def clean_param_name(name: str) -> str:
    """Strip the prefixes added by FSDP, activation checkpointing, torch.compile and DDP."""
    for junk in ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.", "parametrizations."):
        name = name.replace(junk, "")
    if name.startswith("module."):
        name = name[len("module.") :]
    return name.removesuffix(".original")


def layer_id(name: str, n_blocks: int) -> int:
    """Layer index of a backbone parameter name (relative to the backbone): tokens 0, block i -> i+1, else L+1."""
    parts = name.split(".")
    if parts[0] in _TOKENS:
        return 0
    if "blocks" in parts:
        i = parts.index("blocks")
        if i + 1 < len(parts) and parts[i + 1].isdigit():
            return int(parts[i + 1]) + 1
    return n_blocks + 1


def _n_blocks(module: nn.Module) -> int:
    blocks = getattr(module, "blocks", None)
    return len(blocks) if blocks is not None else 0


def param_groups(
    modules: dict[str, nn.Module] | nn.ModuleDict,
    *,
    layerwise_decay: float = 0.9,
    patch_embed_lr_mult: float = 0.2,
    dino_head_wd_multiplier: float = 1.0,
    fuse: bool = True,
) -> list[dict[str, Any]]:
    """AdamW groups for the trainable parameters of each sub-module (`backbone`, `dino_head`, `ibot_head`).

    Each group carries `params`, `names`, `lr_multiplier`, `wd_multiplier` and `is_last_layer`; the training
    loop sets `lr = schedule_lr x lr_multiplier` (last-layer lr for flagged groups) and
    `weight_decay = schedule_wd x wd_multiplier` every iteration (`apply_optim_schedule`).
    """
    entries: list[dict[str, Any]] = []
    for sub, module in modules.items():
        n_blocks = _n_blocks(module)
        for raw, p in module.named_parameters():
            if not p.requires_grad:
                continue
            name = clean_param_name(raw)
            lid = layer_id(name, n_blocks) if n_blocks > 0 else n_blocks + 1
            lr_mult = layerwise_decay ** (n_blocks + 1 - lid)
            if name.startswith("patch_embed") or ".patch_embed" in name:
                lr_mult *= patch_embed_lr_mult
            wd_mult = dino_head_wd_multiplier if sub == "dino_head" else 1.0
            if name.endswith("bias") or "norm" in name or "gamma" in name:
                wd_mult = 0.0
            entries.append(
                {
                    "params": [p],
                    "names": [f"{sub}.{name}"],
                    "lr_multiplier": float(lr_mult),
                    "wd_multiplier": float(wd_mult),
                    "is_last_layer": "last_layer" in name,
                }
            )
    if not fuse:
        return entries
    fused: dict[tuple[float, float, bool], dict[str, Any]] = {}
    for e in entries:
        key = (e["lr_multiplier"], e["wd_multiplier"], e["is_last_layer"])
        g = fused.setdefault(
            key, {"params": [], "names": [], "lr_multiplier": key[0], "wd_multiplier": key[1], "is_last_layer": key[2]}
        )
        g["params"] += e["params"]
        g["names"] += e["names"]
    return list(fused.values())


def build_optimizer(
    groups: list[dict[str, Any]],
    betas: tuple[float, float] = (0.9, 0.999),
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over `groups`; fused kernels when every parameter is on CPU or CUDA (`fused=None`), else foreach.

    The fused CPU kernel (torch >= 2.4) is ~6x faster than foreach for a ViT-S + two 65536-prototype heads
    (0.045 s vs 0.27 s per step on 2 cores), which is ~4% of a CPU SSL step.
    """
    params = [p for g in groups for p in g["params"]]
    if fused is None:
        fused = bool(params) and all(p.device.type in ("cuda", "cpu") for p in params)
    kwargs: dict[str, Any] = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(groups, lr=0.0, weight_decay=0.0, betas=(betas[0], betas[1]), **kwargs)


def key_by_module_order(state: dict[str, Any], optimizer: torch.optim.Optimizer, module: nn.Module) -> dict[str, Any]:
    """`optimizer.state_dict()` with each parameter's id replaced by its position in `module.parameters()`.

    Why: `optimizer.state_dict()` numbers parameters in the order of the param groups (grouped by lr and wd
    multipliers), while a checkpoint resumed under FSDP2 is read by Lightning as FSDP's full optimizer state, whose
    ids are positions in the module's parameters (`FSDP.rekey_optim_state_dict`): a single-process or DDP checkpoint
    gave its moments to other parameters (a shape error on resume). Keyed by module order, it loads the same into a
    plain optimizer (ids are matched through the groups' `params` lists) and into FSDP2, as FSDP2's own files do.
    """
    if "param_groups" not in state or any(not isinstance(k, int) for k in state.get("state", {})):
        return state  # not a plain optimizer's state (FSDP's is keyed by names)
    position = {id(p): i for i, p in enumerate(module.parameters())}
    params = [p for g in optimizer.param_groups for p in g["params"]]
    new_id = {old: position[id(p)] for old, p in enumerate(params)}
    groups = [{**g, "params": [new_id[i] for i in g["params"]]} for g in state["param_groups"]]
    return {**state, "state": {new_id[k]: v for k, v in state["state"].items()}, "param_groups": groups}


def apply_optim_schedule(optimizer: torch.optim.Optimizer, lr: float, wd: float, last_layer_lr: float) -> None:
    """Set every group's lr and weight decay for this iteration (official `apply_optim_scheduler`)."""
    for g in optimizer.param_groups:
        mult = g.get("lr_multiplier", 1.0)
        g["lr"] = (last_layer_lr if g.get("is_last_layer", False) else lr) * mult
        g["weight_decay"] = wd * g.get("wd_multiplier", 1.0)


def _grad_params(module: nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.grad is not None]


def clip_grad_per_module(modules: dict[str, nn.Module] | nn.ModuleDict, max_norm: float) -> dict[str, torch.Tensor]:
    """Clip each sub-module's gradient norm separately (official `clip_grad`); returns the pre-clip norms.

    The norms come back as 0-dim tensors on the gradients' device, not floats: reading one on the host waits for
    the device, so a float per module cost a GPU synchronisation per module per step; callers read them only when
    they log. Works with FSDP2 DTensor gradients (the norm is reduced over shards by `clip_grad_norm_`, and the
    local full tensor is returned). `max_norm <= 0` only measures the norms.
    """
    out: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        params: Iterable[torch.Tensor] = _grad_params(module)
        params = list(params)
        if not params:
            continue
        if max_norm and max_norm > 0:
            n = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            n = torch.nn.utils.get_total_norm([p.grad for p in params])  # type: ignore[misc]
        out[name] = (n.full_tensor() if hasattr(n, "full_tensor") else n).detach()
    return out
