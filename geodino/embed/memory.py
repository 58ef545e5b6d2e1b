"""Memory of a feature-raster run: what the plan will hold, checked against what the machine has before any
work (one line naming what to shrink), and the default input-scale description for the metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geodino.embed.config import EmbedConfig
from geodino.embed.plan import Plan
from geodino.errors import ConfigError

__all__ = ["available_memory", "check_memory", "default_scale_desc", "estimate_memory"]


def available_memory() -> int | None:
    """Bytes of memory this process can still get: MemAvailable, capped by a cgroup limit; None if unknown."""
    avail: int | None = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:  # cgroup v2 limit (containers, SLURM jobs)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            room = max(0, int(limit) - used)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def estimate_memory(plan: Plan, cfg: EmbedConfig, in_chans: int, dim: int, embed_dim: int) -> dict[str, int]:
    """Bytes the biggest allocations of a sweep need: the blending band, a batch of input tiles (read, scaled,
    normalised copies), its feature maps, and the backbone's activations (CPU inference)."""
    tc = plan.tile_cells
    width = 0
    for c0, c1 in plan.col_blocks():
        cols = plan.tiles_touching(plan.col_starts, c0, c1)
        width = max(width, plan.col_starts[cols[-1]] + tc - plan.col_starts[cols[0]])
    batch = max(1, min(int(cfg.batch_size), len(plan.col_starts)))
    px = plan.tile_px * plan.tile_px
    parts = {
        "blending band": dim * tc * width * 4 + tc * width * 5,
        "input tiles": batch * px * (in_chans * 4 * 4 + 2),
        "feature maps": batch * dim * tc * tc * 4 * 2,
    }
    parts["activations"] = batch * (tc * tc + 5) * embed_dim * 4 * 12  # qkv, MLP hidden, residuals
    return parts


def check_memory(plan: Plan, cfg: EmbedConfig, info: Any, dim: int, embed_dim: int) -> None:
    """Refuse, before anything is written, a tile/batch whose buffers cannot fit in the memory left."""
    parts = estimate_memory(plan, cfg, info.count, dim, embed_dim)
    where = "memory"
    avail = available_memory()
    if torch.device(cfg.device).type == "cuda" and torch.cuda.is_available():
        # the device holds the batch, its activations and its features; the host the band and the tiles read
        dev_parts = {k: parts[k] for k in ("input tiles", "feature maps", "activations")}
        free = torch.cuda.mem_get_info(torch.device(cfg.device))[0]
        if sum(dev_parts.values()) > 0.8 * free:
            parts, avail, where = dev_parts, free, f"{cfg.device} memory"
        else:
            parts = {k: v for k, v in parts.items() if k != "activations"}
    if avail is None:
        return
    need = sum(parts.values())
    if need <= 0.8 * avail:
        return
    gib = 2**30
    detail = ", ".join(f"{k} {v / gib:.1f}" for k, v in parts.items() if v >= 0.05 * need)
    small = ""
    if plan.tile_px > max(info.height, info.width):
        small = f"; the raster is only {info.height}x{info.width} px, so a tile larger than it gains nothing"
    raise ConfigError(
        f"tile={cfg.tile} with batch_size={cfg.batch_size} needs about {need / gib:.1f} GiB of {where} ({detail} GiB) "
        f"but {avail / gib:.1f} GiB are available{small}; pass a smaller --tile (default {EmbedConfig.tile}) "
        f"or --batch-size"
    )


def default_scale_desc(dtype: str) -> str:
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return "x/255 (uint8)"
    if dt.kind in "iu":
        return f"x/10000 ({dt.name}, assumed)"
    return "x (float input used as reflectance)"
