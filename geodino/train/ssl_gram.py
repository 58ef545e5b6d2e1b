"""Gram anchoring in the SSL step: the loss term against the Gram teacher, the resize of its high-resolution patch
maps to the student grid, and the count of Gram-teacher refreshes (a pure function of the iteration)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from geodino.errors import ConfigError
from geodino.train.ssl_sharding import call_backbone, reshard


def resize_patch_tokens(
    tokens: Tensor, src_hw: tuple[int, int], dst_hw: tuple[int, int], mode: str = "bicubic", antialias: bool = False
) -> Tensor:
    """Resize patch tokens [B, h·w, D] from grid `src_hw` to `dst_hw` (identity when equal), as the Gram teacher's
    high-resolution maps are brought to the student grid (official: bicubic, antialias off)."""
    if tuple(src_hw) == tuple(dst_hw):
        return tokens
    b, n, d = tokens.shape
    if n != src_hw[0] * src_hw[1]:
        raise ValueError(f"{n} tokens do not form a {src_hw[0]}x{src_hw[1]} grid")
    maps = tokens.transpose(1, 2).reshape(b, d, *src_hw)
    kwargs: dict[str, Any] = {"size": tuple(dst_hw), "mode": mode}
    if mode in ("bilinear", "bicubic"):
        kwargs.update(align_corners=False, antialias=antialias)
    maps = F.interpolate(maps.float() if maps.dtype == torch.bfloat16 else maps, **kwargs).to(tokens.dtype)
    return maps.flatten(2).transpose(1, 2)


def gram_updates_before(iteration: int, first: int, every: int) -> int:
    """How many Gram refreshes happened after iterations < `iteration` (refresh after it when (it+1) % every == 0
    and it+1 >= first). A pure function of the iteration, so a resumed run keeps the count without state."""
    lo = max(first, 1)
    hi = iteration  # refreshes after iterations 0..iteration-1 happen at counts n = it+1 in [1, iteration]
    if hi < lo:
        return 0
    return hi // every - (lo - 1) // every


def gram_term(
    arch: Any, b: Mapping[str, Any], s_patch: Tensor, t_patch: Tensor, masks: Tensor, grid: tuple[int, int]
) -> Tensor:
    """The Gram loss of one step: the student's patch Gram matrices against the Gram teacher's (its own crops,
    resized to the student grid) or, with `gram.ema_teacher`, the EMA teacher's patches."""
    g = arch.cfg.gram
    assert arch.gram_loss is not None
    if arch.gram_teacher is None:  # gram.ema_teacher: the EMA teacher's own patches
        target = t_patch
    else:
        if not arch.gram_ready:
            raise ConfigError(
                "the Gram teacher has no weights yet: set gram.ckpt, or gram.it_load_ema_teacher <= the current "
                "iteration, or initialise the stage from a checkpoint (init_from)"
            )
        crops = b.get("gram_crops")
        if crops is None:
            crops = b["global_crops"]
        with torch.no_grad():
            target = call_backbone(arch.gram_teacher["backbone"], crops)["x_norm_patchtokens"]
        reshard(arch.gram_teacher)
        src = (crops.shape[-2] // arch.patch_size, crops.shape[-1] // arch.patch_size)
        target = resize_patch_tokens(target, src, grid, g.resize_method, g.resize_antialias)
    if g.tokens_used == "masked":
        return arch.gram_loss(s_patch[masks], target[masks], img_level=False)
    if g.tokens_used == "unmasked":
        return arch.gram_loss(s_patch[~masks], target[~masks], img_level=False)
    return arch.gram_loss(s_patch, target)
