"""Where a distillation process runs: its device and the process group. Distillation runs its own loop (not
Lightning's), so it joins the group itself from the launcher's variables (`geodino.train.launcher`), with the
device agreed by every process while joining (`geodino.train.join_group`, shared with pretraining)."""

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


def init_distributed(cfg: DistillConfig) -> torch.device:
    """This process's device (`pick_device`), agreed by every process, and the process group joined when
    WORLD_SIZE > 1 (gloo on CPU, NCCL on GPU): set by torchrun, or by `srun_world` from an `srun` step of several
    tasks. A device refused on some ranks, or `train.device=auto` resolved to CUDA on some and CPU on others, stops
    every rank in one line before any joins the group (`join_group`)."""
    import torch.distributed as dist

    from geodino.train.join_group import join_group

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return pick_device(cfg)
    return join_group(lambda: pick_device(cfg), "train.device")
