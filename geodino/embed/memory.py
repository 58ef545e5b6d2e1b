"""Memory of a feature-raster run: what the plan will hold, checked against what the machine has before any
work (one line naming what to shrink), glibc's heap thresholds for the run (bounded growth, sized to the CPU
forward)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from geodino.embed.config import EmbedConfig
from geodino.embed.plan import Plan
from geodino.errors import ConfigError

__all__ = [
    "available_memory",
    "bound_heap_growth",
    "check_image_batch",
    "check_memory",
    "estimate_memory",
    "forward_buffers",
    "heap_for_forward",
    "heap_thresholds",
    "store_threads",
]


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


def check_image_batch(batch: int, channels: int, size: int, flags: str) -> None:
    """Refuse, before any image runs, a resize whose batch of float32 inputs alone cannot fit in the memory left
    (`embed images --image-size 100000` and a probe's `features.image_size` stopped in torch's allocator with a
    traceback). `flags` names what to shrink."""
    need, avail = 4 * int(batch) * int(channels) * int(size) ** 2, available_memory()
    if avail is not None and need > 0.8 * avail:
        raise ConfigError(
            f"image size {size} px with batch size {batch} needs {need / 2**30:.1f} GiB for its {channels}-band input "
            f"alone but {avail / 2**30:.1f} GiB are available; pass a smaller {flags}"
        )


def estimate_memory(plan: Plan, cfg: EmbedConfig, in_chans: int, dim: int, embed_dim: int) -> dict[str, int]:
    """Bytes the biggest allocations of a sweep need: the blending band, a batch of input tiles (read, scaled,
    normalised copies), its feature maps, and the backbone's activations (CPU inference)."""
    tc = plan.tile_cells
    width = 0
    for c0, c1 in plan.col_blocks():
        cols = plan.tiles_touching(plan.col_starts, c0, c1)
        width = max(width, plan.col_starts[cols[-1]] + tc - plan.col_starts[cols[0]])
    batch = _batch(plan, cfg)
    px = plan.tile_px * plan.tile_px
    parts = {
        "blending band": dim * tc * width * 4 + tc * width * 5,
        "input tiles": batch * px * (in_chans * 4 * 4 + 2),
        "feature maps": batch * dim * tc * tc * 4 * 2,
    }
    parts["activations"] = forward_buffers(plan, cfg, embed_dim)[0]
    return parts


def _batch(plan: Plan, cfg: EmbedConfig) -> int:
    """Tiles in the largest batch a sweep runs (a batch never spans tile rows)."""
    return max(1, min(int(cfg.batch_size), len(plan.col_starts)))


def forward_buffers(plan: Plan, cfg: EmbedConfig, embed_dim: int) -> tuple[int, int]:
    """(working set, largest single activation) in bytes of one float32 forward over a batch of tiles: ~12
    token x width buffers (qkv, MLP hidden, residuals), the largest the MLP hidden layer (4 x width)."""
    rows = _batch(plan, cfg) * (plan.tile_cells**2 + 5)  # tokens of the batch (patches + class + 4 storage)
    return rows * embed_dim * 4 * 12, rows * 4 * embed_dim * 4


def check_memory(plan: Plan, cfg: EmbedConfig, info: Any, dim: int, embed_dim: int) -> None:
    """Refuse, before anything is written, a tile/batch whose buffers cannot fit in the memory left."""
    parts = estimate_memory(plan, cfg, info.count, dim, embed_dim)
    where = "memory"
    avail = available_memory()
    on_cuda = torch.device(cfg.device).type == "cuda" and torch.cuda.is_available()
    if on_cuda and cfg.workers > 1:
        # a workers run's parent: each worker checks its own GPU; asking here would open a context on GPU 0
        parts = {k: v for k, v in parts.items() if k != "activations"}
    elif on_cuda:
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


MMAP_THRESHOLD_MIN = 32 << 20  # glibc's own ceiling for its dynamic mmap threshold
TRIM_THRESHOLD_DEFAULT = 128 << 10  # glibc's default M_TRIM_THRESHOLD


def _mallopt(mmap_threshold: int, trim_threshold: int | None = None) -> bool:
    """Set glibc's M_MMAP_THRESHOLD (and M_TRIM_THRESHOLD); False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(-3, int(mmap_threshold)) == 1  # M_MMAP_THRESHOLD
        if trim_threshold is not None:
            ok = libc.mallopt(-1, int(trim_threshold)) == 1 and ok  # M_TRIM_THRESHOLD
        return ok
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False


def bound_heap_growth() -> None:
    """Fix glibc's mmap threshold at 32 MiB so the heap of a long run stops growing with the raster's size.

    By default glibc raises its mmap threshold (and, with it, its trim threshold, to twice that) each time an
    mmapped block is freed, and then serves tiles, batches and feature rows from thread arenas that keep their
    freed memory: RSS grew with the raster (8k vs 2k: +50 %) although live memory did not. Any fixed threshold
    turns that off and keeps the trim threshold at its 128 KiB default, so free memory goes back to the OS
    (peak RSS 16k vs 4k, eager, quiet: 1.08 at 32 MiB and at 1 MiB, 1.17 with glibc's default). 32 MiB is glibc's own
    upper bound for the dynamic threshold: a lower one (1 MiB, used before) made every activation of a bf16 ViT-S
    forward a fresh mmap that page-faults in, 1.36x slower per batch of 8 x 512 px tiles on 2 cores; float32 was
    not affected. It costs ~170 MiB more resident heap (benchmarks/embed.py, docs/fast_inference.md).
    `heap_for_forward` then sizes both thresholds to the CPU forward once the plan is known; both are set here
    so that a second run in the same process starts from the same state as the first.
    """
    _mallopt(MMAP_THRESHOLD_MIN, TRIM_THRESHOLD_DEFAULT)


def heap_thresholds(activations: int, largest: int) -> tuple[int, int]:
    """(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) that keep a CPU forward's buffers in the heap between batches.

    At the fixed 32 MiB threshold every activation above it (ViT-S, 8 tiles of 512 px: the qkv and MLP outputs,
    38 and 51 MB) was a fresh mmap, and with the 128 KiB trim threshold the heap top the rest had used went back to
    the OS after each batch: ~200,000 (compiled) and ~400,000 (eager) page faults per forward, 11-15 % of its time.
    Mapping only allocations over twice the largest activation and trimming only beyond twice the forward's working
    set (`estimate_memory`'s activations) keeps those pages; growth with the raster stays bounded, since the
    thresholds are fixed and sized by the tile batch, not the raster."""
    mmap_threshold = min(max(MMAP_THRESHOLD_MIN, 2 * largest), 1 << 30)
    return mmap_threshold, max(2 * activations, 2 * mmap_threshold)


def heap_for_forward(plan: Plan, cfg: EmbedConfig, embed_dim: int) -> tuple[int, int] | None:
    """On CPU, set `heap_thresholds` for this run's forward (after `bound_heap_growth`); returns what was set, or
    None (a GPU run, whose activations are not in this heap, or not glibc)."""
    if torch.device(cfg.device).type != "cpu":
        return None
    mmap_threshold, trim_threshold = heap_thresholds(*forward_buffers(plan, cfg, embed_dim))
    return (mmap_threshold, trim_threshold) if _mallopt(mmap_threshold, trim_threshold) else None


def store_threads(cfg: EmbedConfig, workers: int = 1) -> int | None:
    """On CPU, zarr's codec thread pool (`threading.max_workers`) at `workers` threads for this process, unless its
    pool already exists or the user set its size; returns what was set, or None.

    zarr encodes each chunk on a thread of its pool, min(32, cores + 4) threads by default, and each thread's malloc
    arena kept the largest chunks it had compressed: seven arenas, ~120 MiB resident and free at the peak of a
    16384 px sweep (~60 at 4096 px), never trimmed under `heap_for_forward`'s threshold. A CPU sweep's cores run the
    forward; one thread compresses its rows as they come. An accelerator run keeps zarr's pool."""
    if torch.device(cfg.device).type != "cpu":
        return None
    import zarr
    from zarr.core import sync

    if getattr(sync, "_executor", None) is not None or zarr.config.get("threading.max_workers", None) is not None:
        return None
    zarr.config.set({"threading.max_workers": int(workers)})
    return int(workers)
