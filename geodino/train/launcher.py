"""Where this process runs in a launched multi-process job, read from the launcher's variables: torchrun's
(`WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), or, under a plain `srun` with several tasks,
SLURM's step variables turned into torchrun's (`srun_world`), and this process's GPU (`local_gpu`). Pretraining
(before Lightning joins the group) and distillation (its own loop) both read them here."""

from __future__ import annotations

import os

from geodino.errors import ConfigError

__all__ = ["local_gpu", "on_cuda", "srun_world"]


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
            " cannot form one process group; launch with torchrun, or set WORLD_SIZE, RANK, LOCAL_RANK, "
            "MASTER_ADDR and MASTER_PORT per task"
        )
    from lightning.fabric.plugins.environments.slurm import SLURMEnvironment

    nodes = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST") or "127.0.0.1"
    os.environ.setdefault("MASTER_ADDR", SLURMEnvironment.resolve_root_node_address(nodes))
    job = os.environ.get("SLURM_JOB_ID", "").strip()
    os.environ.setdefault("MASTER_PORT", str(15000 + int(job[-4:])) if job[-4:].isdigit() else "12910")
    local = os.environ.get("SLURM_LOCALID", "").strip()
    os.environ.update({"WORLD_SIZE": n, "RANK": rank, "LOCAL_RANK": local if local.isdigit() else "0"})


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
    import torch

    return (int(local) if local.isdigit() else 0) % max(torch.cuda.device_count(), 1)


def on_cuda(accelerator: str) -> bool:
    """Whether Lightning's `trainer.accelerator` runs on CUDA here: `gpu`/`cuda`, or `auto` where a GPU is visible."""
    import torch

    acc = str(accelerator).lower()
    return acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available())
