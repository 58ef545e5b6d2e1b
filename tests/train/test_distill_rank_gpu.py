"""Distillation's GPU per process: the node-local rank modulo the visible GPUs. `cuda:LOCAL_RANK` failed with an
invalid device ordinal where each process sees one GPU (CUDA_VISIBLE_DEVICES) and LOCAL_RANK > 0, and srun's tasks
(SLURM_LOCALID, no LOCAL_RANK) all ran on the first GPU."""

from __future__ import annotations

import pytest
import torch

from geodino.config import load_config
from geodino.train.distill import DistillConfig
from geodino.train.distill.build import pick_device

SOURCE = "data.sources=[{type: images, paths: [/tmp], sensor: imagenet}]"


@pytest.fixture
def gpus(monkeypatch):
    """A machine that shows 4 GPUs; no launcher variable set."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for name in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "SLURM_LOCALID", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _device() -> torch.device:
    return pick_device(load_config(DistillConfig, None, [SOURCE, "train.device=cuda"]))


def test_one_visible_gpu_per_process(gpus) -> None:
    gpus.setattr(torch.cuda, "device_count", lambda: 1)
    gpus.setenv("LOCAL_RANK", "3")
    assert _device() == torch.device("cuda", 0)


def test_the_local_rank_modulo_the_gpus(gpus) -> None:
    assert _device() == torch.device("cuda", 0)
    gpus.setenv("LOCAL_RANK", "2")
    assert _device() == torch.device("cuda", 2)
    gpus.setenv("LOCAL_RANK", "6")
    assert _device() == torch.device("cuda", 2)


def test_srun_tasks_take_their_node_local_id(gpus) -> None:
    gpus.setenv("SLURM_PROCID", "5")
    gpus.setenv("SLURM_LOCALID", "1")
    assert _device() == torch.device("cuda", 1)  # plain srun: no RANK, no LOCAL_RANK
    gpus.setenv("RANK", "5")
    assert _device() == torch.device("cuda", 1)  # srun's task of this rank
    gpus.setenv("LOCAL_RANK", "3")
    assert _device() == torch.device("cuda", 3)  # torchrun's first


def test_an_sbatch_steps_own_localid_does_not_place_other_ranks(gpus) -> None:
    """An sbatch script's step sets SLURM_PROCID=0 and SLURM_LOCALID=0 for every process it starts itself."""
    gpus.setenv("SLURM_PROCID", "0")
    gpus.setenv("SLURM_LOCALID", "0")
    gpus.setenv("RANK", "2")
    assert _device() == torch.device("cuda", 2)
