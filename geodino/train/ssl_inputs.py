"""The SSL batch a step reads: official collate names mapped to geodino's, checked, and completed (masks, mask
indices and the masked count filled in when the loader gave none; CONTRIBUTING "SSL batches")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from geodino.errors import InputError
from geodino.models.layers.patch_embed import trim_to_patch_grid

ALIASES = {  # official collate names -> geodino names
    "collated_global_crops": "global_crops",
    "collated_local_crops": "local_crops",
    "collated_masks": "masks",
    "mask_indices_list": "mask_indices",
    "collated_gram_teacher_crops": "gram_crops",
}


@dataclass
class SSLInputs:
    """One SSL batch, checked and completed by `ssl_inputs` (CONTRIBUTING "SSL batches")."""

    batch: dict[str, Any]
    global_crops: Tensor  # [n_global * B, C, H, W], crop-major
    local_crops: Tensor | None  # [n_local * B, C, h, w] or None
    masks: Tensor  # bool [n_global * B, N]
    mask_indices: Tensor  # long [M], into masks.flatten()
    masks_weight: Tensor | None  # float [M]
    n_masked: Tensor  # long [1]
    n_global: int
    n_local: int
    batch_size: int  # B, images per crop
    grid: tuple[int, int]  # patch grid of a global crop


def named_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch under geodino's names (official collate names copied over); refuses one without global crops."""
    out = dict(batch)
    for old, new in ALIASES.items():
        if old in out and new not in out:
            out[new] = out[old]
    if "global_crops" not in out:
        raise InputError("SSL batch has no 'global_crops'; the loader must yield the SSL batch dict")
    return out


def ssl_inputs(batch: Mapping[str, Any], patch_size: int) -> SSLInputs:
    """The batch checked and completed (masks, indices and counts filled in when the loader gave none)."""
    b = named_batch(batch)
    global_crops: Tensor = b["global_crops"]
    n_global = int(b.get("n_global_crops", 2))
    if global_crops.shape[0] % n_global:
        raise InputError(f"global_crops has {global_crops.shape[0]} rows, not a multiple of {n_global} crops")
    B = global_crops.shape[0] // n_global
    local_crops: Tensor | None = b.get("local_crops")
    if local_crops is not None and local_crops.shape[0] == 0:
        local_crops = None
    if local_crops is not None:  # 168 px at patch 16 (official high-res stage): the official conv's 160 px
        local_crops = trim_to_patch_grid(local_crops, patch_size)
    n_local = 0 if local_crops is None else local_crops.shape[0] // B
    masks: Tensor | None = b.get("masks")
    grid = (global_crops.shape[-2] // patch_size, global_crops.shape[-1] // patch_size)
    if masks is None:
        masks = torch.zeros(global_crops.shape[0], grid[0] * grid[1], dtype=torch.bool, device=global_crops.device)
    masks = masks.reshape(global_crops.shape[0], -1).bool()
    mask_indices = b.get("mask_indices")
    if mask_indices is None:
        mask_indices = masks.flatten().nonzero().flatten()
    n_masked = b.get("n_masked_patches")
    if n_masked is None:
        n_masked = torch.tensor([mask_indices.shape[0]], device=global_crops.device)
    return SSLInputs(
        batch=b,
        global_crops=global_crops,
        local_crops=local_crops,
        masks=masks,
        mask_indices=mask_indices,
        masks_weight=b.get("masks_weight"),
        n_masked=n_masked,
        n_global=n_global,
        n_local=n_local,
        batch_size=B,
        grid=grid,
    )
