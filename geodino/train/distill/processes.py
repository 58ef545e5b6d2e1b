"""Where a distillation process runs: its GPU, its place in the process group, and the group itself.

Distillation runs its own loop (not Lightning's), so it reads the launcher's variables itself: torchrun's
(`WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), or, under a plain `srun` with several tasks,
SLURM's step variables, turned into torchrun's by `srun_world` as Lightning's SLURM environment reads them for
pretraining.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from geodino.errors import CheckpointError, ConfigError
from geodino.train.distill.config import DistillConfig
from geodino.train.rank_agreement import agree_on_refusal, refusals_agreed  # distillation's callers import them here

__all__ = [
    "agree_on_refusal",
    "agreed_resume_point",
    "check_shared_checkpoints",
    "gather_ints",
    "init_distributed",
    "local_gpu",
    "pick_device",
    "refusals_agreed",
    "srun_world",
]


def srun_world() -> None:
    """Under `srun` (a job step of several tasks) without torchrun: set `WORLD_SIZE`, `RANK` and `LOCAL_RANK` from
    the step's `SLURM_STEP_NUM_TASKS`, `SLURM_PROCID` and `SLURM_LOCALID`, and `MASTER_ADDR` / `MASTER_PORT` (unless
    set) to the step's first node and Lightning's port for the job (15000 + the job id's last four digits), so the
    tasks form one process group. The step variables, not `SLURM_NTASKS`: the batch script's own step also carries
    `SLURM_NTASKS` (the job's task count) while it is one process, which would then wait for tasks that never come.
    Nothing is changed when `WORLD_SIZE` is set (torchrun, or the user: `WORLD_SIZE=1` keeps srun's tasks separate
    runs) or the step has one task; otherwise `RANK` and `LOCAL_RANK` are SLURM's. A heterogeneous step, or a task
    rank outside the step's count, is refused (the group would wait forever)."""
    if "WORLD_SIZE" in os.environ:
        return
    n = os.environ.get("SLURM_STEP_NUM_TASKS", "").strip()
    rank = os.environ.get("SLURM_PROCID", "").strip()
    if not (n.isdigit() and int(n) > 1 and rank.isdigit()):
        return
    if os.environ.get("SLURM_HET_SIZE") or int(rank) >= int(n):
        raise ConfigError(
            f"srun task {rank} of a {n}-task step{' (heterogeneous job)' if os.environ.get('SLURM_HET_SIZE') else ''}"
            " cannot form one distillation group; launch with torchrun, or set WORLD_SIZE, RANK, LOCAL_RANK, "
            "MASTER_ADDR and MASTER_PORT per task"
        )
    from lightning.fabric.plugins.environments.slurm import SLURMEnvironment

    nodes = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST") or "127.0.0.1"
    os.environ.setdefault("MASTER_ADDR", SLURMEnvironment.resolve_root_node_address(nodes))
    job = os.environ.get("SLURM_JOB_ID", "").strip()
    os.environ.setdefault("MASTER_PORT", str(15000 + int(job[-4:])) if job[-4:].isdigit() else "12910")
    local = os.environ.get("SLURM_LOCALID", "").strip()
    os.environ.update({"WORLD_SIZE": n, "RANK": rank, "LOCAL_RANK": local if local.isdigit() else "0"})


def pick_device(cfg: DistillConfig) -> torch.device:
    """`train.device` resolved: auto is CUDA when visible; on CUDA, this process's GPU (`local_gpu`)."""
    want = cfg.train.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
        return torch.device("cuda", local_gpu())
    return torch.device("cpu")


def local_gpu() -> int:
    """This process's GPU: LOCAL_RANK, else SLURM_LOCALID if SLURM_PROCID is set and is RANK (where set), else
    RANK, else 0; modulo the visible GPUs (one GPU per process via CUDA_VISIBLE_DEVICES: each sees only cuda:0)."""
    local = os.environ.get("LOCAL_RANK", "").strip()
    rank = os.environ.get("RANK", "").strip()
    if not local.isdigit():
        procid = os.environ.get("SLURM_PROCID", "").strip()
        if procid.isdigit() and (not rank.isdigit() or int(rank) == int(procid)):
            local = os.environ.get("SLURM_LOCALID", "").strip()
    if not local.isdigit():
        local = rank
    return (int(local) if local.isdigit() else 0) % max(torch.cuda.device_count(), 1)


def init_distributed(device: torch.device) -> None:
    """Join the process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on GPU): set by torchrun, or by `srun_world`
    from an `srun` step of several tasks."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def gather_ints(*values: int) -> list[tuple[int, ...]]:
    """`values` of every rank, by rank (one all-gather of int64s, on the GPU under NCCL): what each rank sees, for
    a choice every rank must make alike."""
    import torch.distributed as dist

    on = "cuda" if dist.get_backend() == "nccl" else "cpu"
    mine = torch.tensor(list(values), dtype=torch.int64, device=on)
    parts = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mine)
    return [tuple(int(x) for x in p.tolist()) for p in parts]


def _gather_views(step: int, has: int, where: int) -> list[tuple[int, int, int]]:
    """(newest step, has checkpoints, folder key) of every rank, by rank (`gather_ints`)."""
    return gather_ints(step, has, where)  # type: ignore[return-value]


def check_shared_checkpoints(views: list[tuple[int, int, int]], ckpt_dir: Path) -> None:
    """Refuse (one line) when, among ranks reading the same checkpoint folder (the same folder key), some see
    checkpoints and others none: a node-local output_dir, which would pull every rank back to step 0."""
    for r, (_, has, where) in enumerate(views):
        if has:
            continue
        seen = [(q, s) for q, (s, h, w) in enumerate(views) if h and w == where]
        if seen:
            q, s = seen[0]
            raise CheckpointError(
                f"rank {r} sees no checkpoint in {ckpt_dir} while rank {q} sees step {s}; output_dir must be on a "
                "filesystem every node shares"
            )


def agreed_resume_point(
    resume: str, ckpt_dir: Path, device: torch.device | None, distributed: bool
) -> tuple[dict[int, Path], int]:
    """`resume_point`'s answer (this rank's checkpoints, the step every rank starts from: the smallest newest step
    over the ranks, gathered on the GPU under NCCL), refusing a folder that some ranks see checkpoints in and others
    see empty (`check_shared_checkpoints`): the run would silently start again from step 0 on every rank."""
    from geodino.train.resume_point import resume_point

    found, step = resume_point(resume, ckpt_dir, device, dist_on=False)
    if resume != "auto" or not distributed:
        return found, step
    key = int.from_bytes(hashlib.sha256(str(Path(ckpt_dir).resolve()).encode()).digest()[:7], "big")
    views = _gather_views(step, int(bool(found)), key)
    check_shared_checkpoints(views, ckpt_dir)
    return found, min(v[0] for v in views)
