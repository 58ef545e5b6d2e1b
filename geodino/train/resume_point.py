"""The step a training run (pretrain or distill) resumes from, found at its start before the data is probed, so
that a re-run of a finished run (that step is the run's max steps) reads no batch to check the data it will not
train on. By the step checkpoints' names only (no checkpoint is opened), the same step on every rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["check_same_resume_point", "resume_point"]


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


def check_same_resume_point(resume: str, ckpt_dir: Path) -> None:
    """Pretraining, several processes: refuse (the same line on every rank) a `resume="auto"` start whose ranks see
    different newest step checkpoints, as with an output_dir on each node's own disk, where only rank 0 writes them.
    Lightning resumes each rank from the checkpoint it names, so rank 0 went on from its step and the others from
    theirs (step 0: none), and the ranks, out of step, waited for each other for ever. Nothing without a process
    group, with one process, or with another `resume` (`never`: no checkpoint; a path names the same file)."""
    import torch.distributed as dist

    from geodino.errors import CheckpointError

    if resume != "auto" or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    found, step = resume_point(resume, ckpt_dir, dist_on=False)
    views: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(views, (step if found else None, str(ckpt_dir)))
    differ = [r for r, view in enumerate(views) if view[0] != views[0][0]]
    if not differ:
        return

    def sees(r: int) -> str:
        s, where = views[r]
        return f"rank {r} sees {'no checkpoint' if s is None else f'step {s}'} in {where}"

    raise CheckpointError(
        f"{sees(differ[0])} while {sees(0)}; every rank resumes from its own copy of the newest checkpoint: put "
        "output_dir on a filesystem every node shares (or give each node a copy of the same checkpoints), or start "
        "a new output_dir"
    )
