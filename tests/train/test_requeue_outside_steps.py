"""SLURM's warning signal outside the training steps (start-up: teacher and data loading, a distillation's heads
warm-up; the end: export) requeues the job at once: nothing can be saved there. Before, SIGUSR1 met its default
action there (the process ended with exit 138, no line, no requeue), although the steps' stop request takes it over
only from the first step. SLURM is faked as in test_distill_requeue (environment and a recording `scontrol`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from geodino.config import load_config
from geodino.train import stop
from tests.train.test_distill_requeue import _fake_slurm


@pytest.fixture(autouse=True)
def _no_default_action():
    """SIGUSR1 left to its default would end the test process: a missing requeue fails the test instead."""

    def unhandled(*_: object) -> None:
        raise AssertionError("SIGUSR1 reached the handler from before the run: nothing requeued")

    previous = signal.signal(signal.SIGUSR1, unhandled)
    yield
    signal.signal(signal.SIGUSR1, previous)


def _signal_self(*_: object) -> None:
    os.kill(os.getpid(), signal.SIGUSR1)
    raise AssertionError("SIGUSR1 was not handled")


def test_sigusr1_outside_the_steps_requeues_once_and_stops(tmp_path, monkeypatch, capsys) -> None:
    calls = _fake_slurm(monkeypatch, tmp_path)
    monkeypatch.setattr(stop, "on_slurm", lambda: True)
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(KeyboardInterrupt), stop.requeue_outside_steps(True):
        _signal_self()
    assert signal.getsignal(signal.SIGUSR1) == before  # handed back
    err = capsys.readouterr().err
    assert "SIGUSR1 (SLURM's time-limit warning) came outside the training steps" in err
    assert "requeued SLURM job 42; it resumes from the newest checkpoint" in err
    assert calls.read_text().split() == ["requeue", "42"]
    with stop.requeue_outside_steps(False):  # the switch off: SIGUSR1 keeps its handler
        assert signal.getsignal(signal.SIGUSR1) == before


def test_only_global_rank_zero_requeues(tmp_path, monkeypatch) -> None:
    calls = _fake_slurm(monkeypatch, tmp_path)
    monkeypatch.setattr(stop, "on_slurm", lambda: True)
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(KeyboardInterrupt), stop.requeue_outside_steps(True):
        _signal_self()
    assert not Path(calls).exists()


@pytest.mark.parametrize("command", ["pretrain", "distill"])
def test_both_trainers_requeue_from_their_start_up(tmp_path, monkeypatch, capsys, command) -> None:
    """The signal during the start (patched in as the run's whole body) reaches the requeue of both commands."""
    calls = _fake_slurm(monkeypatch, tmp_path)
    monkeypatch.setattr(stop, "on_slurm", lambda: True)
    if command == "pretrain":
        from geodino.train import pretrain as mod
        from geodino.train.config import PretrainConfig as Config

        monkeypatch.setattr(mod, "_pretrain", _signal_self)
        run = mod.pretrain
    else:
        from geodino.train.distill import loop as mod
        from geodino.train.distill.config import DistillConfig as Config

        monkeypatch.setattr(mod, "_distill", _signal_self)
        run = mod.distill
    cfg = load_config(Config, None, [f"output_dir={tmp_path / 'run'}", "data.sources=[{type: synthetic}]"])
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    assert calls.read_text().split() == ["requeue", "42"]
