"""The step a training run (pretrain or distill) resumes from, found at its start before the data is probed, so
that a re-run of a finished run (that step is the run's max steps) reads no batch to check the data it will not
train on. By the step checkpoints' names only (no checkpoint is opened), the same step on every rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["resume_point"]


def resume_point(
    resume: str, ckpt_dir: Path, device: Any = None, dist_on: bool | None = None
) -> tuple[dict[int, Path], int]:
    """This rank's step checkpoints in `ckpt_dir` by step and the step the run starts from: with `resume="auto"` the
    newest one's (the smallest newest step over the ranks when `dist_on`; None: when a process group is up), else 0
    (`never`, or a checkpoint named by path: its step is known once it is read), as with no checkpoint. The
    all-reduce runs on `device` when it is a GPU, else on the CPU (no `device`: on the GPU when the group is NCCL's)."""
    if resume != "auto":
        return {}, 0
    import torch
    import torch.distributed as dist

    from geodino.train.checkpoint_folder import checkpoint_step, find_checkpoints

    found = {checkpoint_step(p) or 0: p for p in find_checkpoints(ckpt_dir)}
    step = max(found) if found else 0
    if dist_on is None:
        dist_on = dist.is_available() and dist.is_initialized()
    if dist_on:  # every rank (every distillation subgroup) resumes from the same step: the oldest newest checkpoint
        if device is None:
            device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        elif device.type != "cuda":
            device = "cpu"
        t = torch.tensor([step], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        step = int(t.item())
    return found, step
