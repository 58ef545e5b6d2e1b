"""Small SSL recipes and synthetic SSL batches for the meta-architecture tests (no data files)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from geodino.config import load_config
from geodino.data.masking import collate_masks, sample_masks
from geodino.train.recipe import SSLConfig

TINY = [
    "student.arch=vit_tiny",
    "student.patch_size=8",
    "student.drop_path_rate=0.0",
    "student.overrides={depth: 2, pos_embed_rope_rescale_coords: null}",
    "dino.head_n_prototypes=64",
    "dino.head_hidden_dim=32",
    "dino.head_bottleneck_dim=16",
    "ibot.head_n_prototypes=48",
    "ibot.head_hidden_dim=32",
    "ibot.head_bottleneck_dim=16",
    "optim.freeze_last_layer_iters=1",
    "schedules.lr.warmup_iters=2",
    "schedules.teacher_temp.warmup_iters=2",
    "monitor.every=1",
]


def tiny_cfg(*overrides: str) -> SSLConfig:
    return load_config(SSLConfig, None, [*TINY, *overrides])


def ssl_batch(
    B: int = 4, n_local: int = 4, size: int = 32, local: int = 16, gram_size: int | None = None, seed: int = 0
) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {
        "global_crops": torch.randn(2 * B, 3, size, size, generator=g),
        "local_crops": torch.randn(n_local * B, 3, local, local, generator=g),
    }
    if gram_size:
        out["gram_crops"] = torch.randn(2 * B, 3, gram_size, gram_size, generator=g)
    grid = size // 8
    masks, ub = sample_masks(2 * B, (grid, grid), np.random.default_rng(seed), mask_ratio=(0.1, 0.5))
    out.update(collate_masks(masks, ub))
    return out
