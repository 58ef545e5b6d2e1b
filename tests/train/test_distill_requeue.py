"""SLURM's warning signal (`sbatch --signal=SIGUSR1@120`) in distillation, as in pretraining
(test_reliability_audit.test_slurms_sigusr1_saves_the_step_and_requeues_instead_of_a_mid_step_hpc_checkpoint): with
`train.slurm_auto_requeue` on SLURM it finishes the step, saves it, rank 0 runs `scontrol requeue <job>`, and the
requeued job (the same command) resumes from that checkpoint. Before, SIGUSR1's default action killed the run and
every step since the last periodic checkpoint was lost.

SLURM is faked: its environment (SLURM_JOB_ID=42, ...) and a `scontrol` script first on PATH that records its
arguments."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest
import torch

from tests.train.conftest import signal_after_step
from tests.train.test_reliability_audit import SLURM_ENV
from tests.train.test_stop import _noise_images


def _fake_slurm(mp: pytest.MonkeyPatch, folder: Path) -> Path:
    """Set SLURM's environment and put a stub `scontrol` first on PATH; returns the file its calls are written to
    (one line of arguments per call)."""
    calls = folder / "scontrol.calls"
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "scontrol"
    stub.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    stub.chmod(0o755)
    for k, v in SLURM_ENV.items():
        mp.setenv(k, v)
    mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return calls


def _counted(train_step, steps: list[int]):
    """`train_step` that lists the steps it runs in `steps`."""

    def step_and_count(run, step, batch):
        steps.append(step)
        return train_step(run, step, batch)

    return step_and_count


def test_distill_sigusr1_on_slurm_saves_the_step_requeues_and_the_rerun_resumes_bit_identically(
    tmp_path, capsys, monkeypatch
):
    from geodino.cli import main
    from geodino.config import save_config
    from geodino.train.distill import loop
    from tests.train.test_distill import _cfg

    imgs = _noise_images(tmp_path / "imgs")

    def argv(out: str) -> list[str]:
        save_config(_cfg(imgs, tmp_path / out, "train.max_steps=3", "train.checkpoint_every_n_steps=100"),
                    tmp_path / f"{out}.yaml")  # fmt: skip
        return ["distill", "-c", str(tmp_path / f"{out}.yaml")]

    assert main(argv("a")) == 0  # uninterrupted, outside SLURM
    b = argv("b")
    calls = _fake_slurm(monkeypatch, tmp_path)
    stray: list[int] = []

    def not_geodinos(signum, frame):  # where the run does not take SIGUSR1 over, it lands here (not a dead pytest)
        stray.append(signum)

    previous = signal.signal(signal.SIGUSR1, not_geodinos)
    try:
        with monkeypatch.context() as m:
            m.setattr(loop, "train_step", signal_after_step(loop.train_step, 0, signal.SIGUSR1))
            capsys.readouterr()
            code = main(b)
        err = capsys.readouterr().err
        assert not stray, "SIGUSR1 reached the handler the run found, not the run's stop request"
        assert code == 130, err
        assert "geodino: SIGUSR1 received: stopping after this step and saving a checkpoint of it" in err
        assert "stopped after step 1 of 3 (SIGUSR1); saved " in err
        said = [line for line in err.splitlines() if "requeue" in line]
        assert said == ["geodino: requeued SLURM job 42; it resumes from the checkpoint just saved"], err
        assert err.rstrip().endswith("geodino: interrupted")
        assert calls.read_text().splitlines() == ["requeue 42"]
        assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step_*")) == ["step_00000001.ckpt"]
        assert signal.getsignal(signal.SIGUSR1) is not_geodinos  # given back

        steps: list[int] = []
        with monkeypatch.context() as m:  # the requeued job: the same command, in the same (fake) SLURM job
            m.setattr(loop, "train_step", _counted(loop.train_step, steps))
            assert main(b) == 0
        assert steps == [1, 2]  # resumed from the checkpoint of step 1
        assert calls.read_text().splitlines() == ["requeue 42"]  # a complete run requeues nothing
    finally:
        signal.signal(signal.SIGUSR1, previous)
    one, two = (torch.load(tmp_path / d / "checkpoints" / "step_00000003.ckpt", weights_only=True) for d in "ab")
    for part in ("students", "students_ema"):
        assert one[part].keys() == two[part].keys()
        for name in one[part]:
            for k, v in one[part][name].items():
                assert torch.equal(two[part][name][k], v), (part, name, k)
    assert torch.load(tmp_path / "b" / "checkpoints" / "step_00000003.ckpt", weights_only=True)["step"] == 3
    rows = list(csv.DictReader((tmp_path / "b" / "log.csv").open()))
    assert [r["step"] for r in rows] == ["0", "1", "2"]  # the resumed run started at step 1, once


def test_sigusr1_is_a_stop_request_only_on_slurm_with_the_switch_on(monkeypatch):
    """Outside SLURM (or in an `interactive` job, or with the switch off) SIGUSR1 keeps its handler, as pretraining
    decides; distillation's switch has pretraining's name and default."""
    from geodino.train.config import TrainerConfig
    from geodino.train.distill.config import DistillTrainConfig
    from geodino.train.stop import REQUEUE_SIGNAL, SIGNALS, stop_signals

    assert DistillTrainConfig().slurm_auto_requeue is TrainerConfig().slurm_auto_requeue is True
    for k in (*SLURM_ENV, "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(k, raising=False)
    assert stop_signals(True) == SIGNALS
    for k, v in SLURM_ENV.items():
        monkeypatch.setenv(k, v)
    assert stop_signals(True) == (*SIGNALS, REQUEUE_SIGNAL) and REQUEUE_SIGNAL == signal.SIGUSR1
    assert stop_signals(False) == SIGNALS
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # an salloc shell: processes started by hand
    assert stop_signals(True) == SIGNALS


def test_only_global_rank_zero_requeues_and_only_after_sigusr1(tmp_path, monkeypatch, capsys):
    """Every rank ends a stopped run the same way; one `scontrol requeue` per job, from rank 0, and only for
    SLURM's warning (a SIGTERM or Ctrl-C stop is not requeued)."""
    from geodino.train.stop import end_stopped_run

    calls = _fake_slurm(monkeypatch, tmp_path)
    end_stopped_run(4, 10, "SIGUSR1", tmp_path / "step_00000004.ckpt", rank_zero=False)
    end_stopped_run(4, 10, "SIGTERM", tmp_path / "step_00000004.ckpt", rank_zero=True)
    assert not calls.exists()
    end_stopped_run(4, 10, "SIGUSR1", tmp_path / "step_00000004.ckpt", rank_zero=True)
    assert calls.read_text().splitlines() == ["requeue 42"]
    err = capsys.readouterr().err
    assert err.count("stopped after step 4 of 10") == 3 and err.count("geodino: requeued SLURM job 42") == 1
