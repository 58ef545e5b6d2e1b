"""Where a distillation process runs: its device and the process group. Distillation runs its own loop (not
Lightning's), so it joins the group itself from the launcher's variables (`geodino.train.launcher`)."""

from __future__ import annotations

import os

import torch

from geodino.errors import ConfigError
from geodino.train.distill.config import DistillConfig
from geodino.train.launcher import local_gpu

__all__ = ["init_distributed", "pick_device"]


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


def init_distributed(device: torch.device) -> None:
    """Join the process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on GPU): set by torchrun, or by `srun_world`
    from an `srun` step of several tasks."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
