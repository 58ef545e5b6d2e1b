"""Distillation under a plain `srun` with several tasks: torchrun's variables are built from SLURM's step."""

from __future__ import annotations

import os

import pytest

from geodino.train.launcher import local_gpu, srun_world

STEP = {
    "SLURM_JOB_ID": "987654",
    "SLURM_NTASKS": "8",
    "SLURM_STEP_NUM_TASKS": "8",
    "SLURM_PROCID": "5",
    "SLURM_LOCALID": "1",
    "SLURM_STEP_NODELIST": "gpu[12-15]",
}
TORCHRUN = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def env():
    """Set SLURM/torchrun variables for one test; the whole environment is put back after it (srun_world writes
    os.environ itself, and a WORLD_SIZE left behind would make later tests wait for a process group)."""
    saved = dict(os.environ)
    for k in (*TORCHRUN, *STEP, "SLURM_JOB_NODELIST"):
        os.environ.pop(k, None)
    try:
        yield os.environ.update
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_an_srun_task_joins_its_steps_group(env, monkeypatch) -> None:
    import torch

    env(STEP)
    srun_world()
    assert {k: os.environ[k] for k in TORCHRUN} == {
        "WORLD_SIZE": "8",
        "RANK": "5",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "gpu12",  # the step's first node
        "MASTER_PORT": "22654",  # Lightning's rule for the job: 15000 + 7654
    }
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert local_gpu() == 1


def test_the_batch_step_and_torchrun_are_left_alone(env) -> None:
    """The batch script's own step carries SLURM_NTASKS (the job's tasks) but is one process: no group (it would
    wait for tasks that never come). torchrun's variables, or the user's, are kept."""
    env({k: v for k, v in STEP.items() if k != "SLURM_STEP_NUM_TASKS"})
    srun_world()
    assert not any(k in os.environ for k in TORCHRUN)
    env({"SLURM_STEP_NUM_TASKS": "8", "WORLD_SIZE": "16", "RANK": "3"})
    srun_world()
    assert (os.environ["WORLD_SIZE"], os.environ["RANK"]) == ("16", "3") and "MASTER_ADDR" not in os.environ
    env({"SLURM_STEP_NUM_TASKS": "1"})
    os.environ.pop("WORLD_SIZE")
    srun_world()
    assert "WORLD_SIZE" not in os.environ


def test_a_set_master_address_and_port_are_kept(env) -> None:
    env({**STEP, "MASTER_ADDR": "login1", "MASTER_PORT": "29500"})
    srun_world()
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"], os.environ["WORLD_SIZE"]) == ("login1", "29500", "8")


def test_a_heterogeneous_step_or_an_outside_rank_is_refused(env) -> None:
    from geodino.errors import ConfigError

    env({**STEP, "SLURM_HET_SIZE": "2"})
    with pytest.raises(ConfigError, match=r"heterogeneous job.*torchrun"):
        srun_world()
    os.environ.pop("SLURM_HET_SIZE")
    env({"SLURM_PROCID": "8"})
    with pytest.raises(ConfigError, match="srun task 8 of a 8-task step cannot form one process group"):
        srun_world()
    assert "WORLD_SIZE" not in os.environ
