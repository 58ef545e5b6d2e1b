"""How the SSL meta-architecture meets FSDP2: sharding its modules as the official recipe does, resharding
inference-only roots, copying and reading tensors shard by shard, and calling backbones through their hooks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def call_backbone(backbone: nn.Module, x: Tensor | list[Tensor], masks: Any = None) -> Any:
    """Through `__call__` (FSDP/DDP hooks run) with the official `is_training=True` (dict outputs)."""
    return backbone(x, masks=masks, is_training=True)


def fully_shard_arch(arch: nn.Module, mesh: Any, **fsdp_kwargs: Any) -> None:
    """FSDP2 as the official recipe: `fully_shard` every transformer block, then every module of `student`,
    `teacher` and `gram_teacher` (identically, so EMA and Gram refreshes pair matching shards).

    Methods other than `forward` that the recipe calls are registered with `register_fsdp_forward_method` so
    their parameters are gathered: `forward_list` of blocks (the list-of-crops path), `forward_features` and
    `get_intermediate_layers` of backbones. `fsdp_kwargs` go to `fully_shard` (`mp_policy`,
    `reshard_after_forward`, ...).
    """
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    parts = [getattr(arch, "student", None), getattr(arch, "teacher", None), getattr(arch, "gram_teacher", None)]
    for part in parts:
        if part is None:
            continue
        for module in part.values():
            for blk in getattr(module, "blocks", []):
                fully_shard(blk, mesh=mesh, **fsdp_kwargs)
                if hasattr(blk, "forward_list"):
                    register_fsdp_forward_method(blk, "forward_list")
            fully_shard(module, mesh=mesh, **fsdp_kwargs)
            for method in ("forward_features", "get_intermediate_layers"):
                if hasattr(module, method):
                    register_fsdp_forward_method(module, method)


def reshard(*parts: nn.Module | None) -> None:
    """Bring FSDP2-sharded modules back to their sharded state. An inference-only root (teacher, Gram teacher)
    never runs backward, so FSDP keeps its gathered parameters after forward; EMA and refreshes must pair
    sharded student and teacher parameters, and the memory is better released."""
    for part in parts:
        if part is None:
            continue
        for m in part.modules():
            own = getattr(m, "reshard", None)
            if callable(own) and type(m).__name__.startswith("FSDP"):
                own()


def copy_tensors(src: nn.Module, dst: nn.Module) -> None:
    """dst's parameters and buffers <- src's of the same names (shard by shard when FSDP2-sharded alike)."""
    from_src: dict[str, Tensor] = dict(src.named_parameters())
    from_src.update(dict(src.named_buffers()))
    items = list(dst.named_parameters()) + list(dst.named_buffers())
    torch._foreach_copy_([local_shard(v) for _, v in items], [local_shard(from_src[n]) for n, _ in items])


def local_shard(t: Tensor) -> Tensor:
    """The local shard of an FSDP2 DTensor (foreach kernels run on plain tensors), else the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t
