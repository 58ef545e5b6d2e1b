"""The collapse warning is printed once per run, by global rank 0: every rank of a multi-process pretraining run
checked its own batch and warned, so an 8-GPU run printed the same paragraph 8 times. Each rank still checks (and
`collapsed` stays per rank); a single process warns as before."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest

from geodino.train.monitors import CollapseMonitor, CollapseWarning

# one-hot teacher outputs on 64 prototypes: collapsed at every check
COLLAPSED = {"n_prototypes": 64, "teacher_entropy": 0.0, "teacher_usage_entropy": 0.0}


def test_a_rank_other_than_zero_checks_but_does_not_warn() -> None:
    m = CollapseMonitor(patience=1, rank=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        for step in range(3):
            assert m.update(COLLAPSED, step=step)
    assert m.collapsed


def test_rank_zero_warns_once_per_episode(recwarn) -> None:
    m = CollapseMonitor(patience=2, rank=0)
    for step in range(5):
        m.update(COLLAPSED, step=step)
    said = [w for w in recwarn if issubclass(w.category, CollapseWarning)]
    assert len(said) == 1 and "the teacher looks collapsed at step 1" in str(said[0].message)
    with pytest.warns(CollapseWarning):  # a single process (rank 0, the default) warns as before
        CollapseMonitor(patience=1).update(COLLAPSED, step=0)


def test_the_pretraining_module_gives_the_monitor_its_global_rank() -> None:
    """The module that drives the arch (whose `forward` runs the monitor) passes the trainer's global rank at the
    start of training, so monitors.py needs no distributed state of its own."""
    from geodino.train.module import SSLModule

    module = SimpleNamespace(arch=SimpleNamespace(collapse_monitor=CollapseMonitor()), global_rank=5)
    SSLModule.on_train_start(module)
    assert module.arch.collapse_monitor.rank == 5
    SSLModule.on_train_start(SimpleNamespace(arch=SimpleNamespace(), global_rank=1))  # an arch without a monitor


@pytest.mark.slow
def test_a_two_process_pretraining_run_prints_the_collapse_paragraph_once(tmp_path, tiny_data):
    """2-process DDP pretraining (gloo, CPU), each rank a process started with its rank's environment (as torchrun
    or srun start them): the tiny run's teacher sits at ln K, so each rank's check finds it collapsed; rank 0 alone
    prints the warning."""
    import os
    import socket
    import subprocess
    import sys

    from tests.train.conftest import write_config
    from tests.train.test_stop_distributed import ROOT, TIMEOUT_S, WORKER

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    argv = ["pretrain", "-c", str(cfg), "trainer.strategy=ddp", "trainer.devices=2", "trainer.max_steps=4",
            "ssl.monitor.patience=1", "checkpoint.export_at_end=false"]  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEODINO_TEST_", "PYTHONWARNINGS"))}
        env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2",
                   NODE_RANK="0", RANK=str(rank), LOCAL_RANK=str(rank))  # fmt: skip
        cmd = [sys.executable, str(WORKER), *argv]
        procs.append(
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    try:
        said = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(said)
    assert [s.count("the teacher looks collapsed at step") for s in said] == [1, 0], "\n".join(said)
