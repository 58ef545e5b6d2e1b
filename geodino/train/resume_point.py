"""The step a training run (pretrain or distill) resumes from, found at its start before the data is probed, so
that a re-run of a finished run (that step is the run's max steps) reads no batch to check the data it will not
train on. By the step checkpoints' names only (no checkpoint is opened), the same step on every rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SHARED_FOLDER", "agreed_resume_point", "check_resume_views", "resume_point"]


def resume_point(resume: str, ckpt_dir: Path) -> tuple[dict[int, Path], int]:
    """This rank's step checkpoints in `ckpt_dir` by step and the step the run starts from: with `resume="auto"` the
    newest one's, else 0 (`never`, or a checkpoint named by path: its step is known once it is read), as with no
    checkpoint. Several processes agree on it with `agreed_resume_point`."""
    if resume != "auto":
        return {}, 0
    from geodino.train.checkpoint_folder import checkpoint_step, find_checkpoints

    found = {checkpoint_step(p) or 0: p for p in find_checkpoints(ckpt_dir)}
    return found, max(found) if found else 0


SHARED_FOLDER = (
    "every rank resumes from its own copy of the newest checkpoint: put output_dir on a filesystem every node shares "
    "(or give each node a copy of the same checkpoints), or start a new output_dir"
)  # the advice of every refusal of ranks that see different checkpoints (pretraining, distillation, placements)


def agreed_resume_point(resume: str, ckpt_dir: Path, *, same_step: bool = False) -> tuple[dict[int, Path], int]:
    """`resume_point`'s answer agreed over the ranks of a process group (none, or one process: this rank's). Each
    rank reads its own disk, so with an output_dir on each node's own disk (only rank 0 writes checkpoints) ranks see
    different checkpoints: refused in the same line on every rank (`check_resume_views`) when ranks reading the same
    folder (with `same_step`: every rank) see checkpoints on some and none on others, which would pull every rank back
    to step 0, or, with `same_step`, different newest steps (pretraining: Lightning resumes each rank from the
    checkpoint it names, and ranks out of step wait for each other for ever). Otherwise every rank starts from the
    smallest newest step (distillation: students whose folders were cut short at different steps go on together).
    The gather runs on this process's GPU under NCCL (set by the launcher)."""
    import torch.distributed as dist

    found, step = resume_point(resume, ckpt_dir)
    if resume != "auto" or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return found, step
    views = _gather_views(step if found else None, str(Path(ckpt_dir).resolve()))
    check_resume_views(views, same_step)
    return found, min(s or 0 for s, _ in views)


def _gather_views(step: int | None, where: str) -> list[tuple[int | None, str]]:
    """(newest step or None, checkpoint folder) of every rank, by rank (one all-gather of objects)."""
    import torch.distributed as dist

    views: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(views, (step, where))
    return [tuple(v) for v in views]


def check_resume_views(views: list[tuple[int | None, str]], same_step: bool) -> None:
    """Refuse (one line naming two ranks) ranks whose views of the checkpoints (each rank's newest step or None,
    and its folder) cannot resume together: in one folder (`same_step`: any folder) some see checkpoints and others
    none, or, with `same_step`, another newest step. Ranks of other folders (other students) are not compared."""
    from geodino.errors import CheckpointError

    def sees(r: int, folder: bool = True) -> str:
        s, where = views[r]
        return f"rank {r} sees {'no checkpoint' if s is None else f'step {s}'}" + (f" in {where}" if folder else "")

    for r, (s, where) in enumerate(views):
        for q, (t, other) in enumerate(views[:r]):
            if not (same_step or other == where) or s == t or (not same_step and None not in (s, t)):
                continue
            late, early = (r, q) if s is None or (t is not None and s < t) else (q, r)
            raise CheckpointError(
                f"{sees(late)} while {sees(early, views[early][1] != views[late][1])}; {SHARED_FOLDER}"
            )
