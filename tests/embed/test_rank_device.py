"""One GPU per process: a bare "cuda" for a rank of several (torchrun, SLURM, `--workers`) names the GPU of its
local rank on a machine with several GPUs; before, every rank of a node ran on its first GPU."""

from __future__ import annotations

import pytest
import torch

from geodino.embed.config import make_config, rank_device


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for name in ("LOCAL_RANK", "SLURM_LOCALID", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_local_rank_picks_the_gpu(four_gpus):
    assert rank_device("cuda", 6, 8) == "cuda:2"  # no launcher variable: the rank, modulo the GPUs
    assert rank_device("cuda", 6, 8, local=1) == "cuda:1"  # a spawned worker's index
    four_gpus.setenv("SLURM_LOCALID", "5")
    four_gpus.setenv("SLURM_PROCID", "0")  # rank 0 is srun's task 0
    assert rank_device("cuda", 0, 8) == "cuda:1"
    four_gpus.setenv("LOCAL_RANK", "3")  # torchrun's, ahead of SLURM's
    assert rank_device("cuda", 0, 8) == "cuda:3"


def test_other_devices_and_single_processes_stay_as_given(four_gpus):
    assert rank_device("cuda", 0, 1) == "cuda"
    assert rank_device("cuda:1", 3, 4) == "cuda:1"
    assert rank_device("cpu", 3, 4) == "cpu"
    four_gpus.setattr(torch.cuda, "device_count", lambda: 1)
    assert rank_device("cuda", 3, 4) == "cuda"


def test_a_ranks_config_names_its_gpu(four_gpus):
    cfg = make_config(None, "arch:vit_tiny?seed=0", "out.zarr", {"device": "cuda", "world_size": 4, "rank": 2})
    assert cfg.device == "cuda:2"
    one = make_config(None, "arch:vit_tiny?seed=0", "out.zarr", {"device": "cuda"})
    assert one.device == "cuda"


def test_slurm_localid_counts_only_for_the_ranks_own_srun_task(four_gpus):
    """An sbatch script's own step sets SLURM_LOCALID=0 (and SLURM_PROCID=0): ranks it starts itself (a loop, GNU
    parallel, array tasks sharing a node) are placed by their rank, not all on the first GPU."""
    four_gpus.setenv("SLURM_LOCALID", "0")
    assert [rank_device("cuda", r, 4) for r in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    four_gpus.setenv("SLURM_PROCID", "0")  # the batch step's task: rank 0's only
    assert [rank_device("cuda", r, 4) for r in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    four_gpus.setenv("SLURM_PROCID", "6")  # srun task 6 is rank 6: its node-local id decides
    four_gpus.setenv("SLURM_LOCALID", "2")
    assert rank_device("cuda", 6, 8) == "cuda:2"
    assert rank_device("cuda", 5, 8) == "cuda:1"  # another rank than the task: the rank decides
    four_gpus.setenv("LOCAL_RANK", "3")  # torchrun's still first
    assert rank_device("cuda", 6, 8) == "cuda:3"
