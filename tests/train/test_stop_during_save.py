"""A Ctrl-C or SIGTERM that arrives while a checkpoint is being written (here: as the finished file is renamed into
place, the last moment of a write).

The last checkpoint of a run whose length is not a multiple of `checkpoint.every_n_steps` is written after the
training loop (`on_train_end`). The stop request was given back before that write, so a first SIGTERM there met the
CLI's handler: the write broke off (only its temporary was left), exit 130, and every step since the last periodic
checkpoint was lost, while the docs promise that a signal during the last step stops nothing."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.train.conftest import write_config


def _signal_while_saving(monkeypatch, step: int, times: int) -> None:
    """SIGTERM `times` times while the checkpoint of `step` is renamed into place."""
    from geodino.train import checkpointing as ck

    real = ck.replace_durably

    def replace(tmp: Path, final: Path) -> None:
        if final.name == f"step_{step:08d}.ckpt":
            for _ in range(times):
                signal.raise_signal(signal.SIGTERM)
        real(tmp, final)

    monkeypatch.setattr(ck, "replace_durably", replace)


def _run(tmp_path: Path, data: Path, *over: str) -> int:
    from geodino.cli import main

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", data)
    return main(["pretrain", "-c", str(cfg), "checkpoint.export_at_end=false", "ssl.monitor.every=0", *over])


def test_a_sigterm_during_the_last_save_lets_it_finish(tmp_path, tiny_data, capsys, monkeypatch) -> None:
    from geodino.models.checkpoints.files import load_file

    _signal_while_saving(monkeypatch, step=2, times=1)
    assert _run(tmp_path, tiny_data, "trainer.max_steps=2", "checkpoint.every_n_steps=5") == 0
    err = capsys.readouterr().err
    assert "SIGTERM came during the last step (2 of 2): the run is complete" in err
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step_00000002.ckpt"]  # no temporary left
    assert load_file(ckpts / "last.ckpt")["global_step"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back all the same


def test_a_second_sigterm_during_the_last_save_stops_without_a_partial_checkpoint(
    tmp_path, tiny_data, capsys, monkeypatch
) -> None:
    """The second signal stops at once (as documented): no step_2 under its final name; the next run sweeps the
    temporary and trains again from the start (no periodic checkpoint was due)."""
    _signal_while_saving(monkeypatch, step=2, times=2)
    assert _run(tmp_path, tiny_data, "trainer.max_steps=2", "checkpoint.every_n_steps=5") == 130
    ckpts = tmp_path / "run" / "checkpoints"
    assert not (ckpts / "step_00000002.ckpt").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    monkeypatch.undo()
    capsys.readouterr()
    assert _run(tmp_path, tiny_data, "trainer.max_steps=2", "checkpoint.every_n_steps=5") == 0
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step_00000002.ckpt"]


def test_a_sigterm_during_a_periodic_save_stops_after_it(tmp_path, tiny_data, capsys, monkeypatch) -> None:
    from geodino.models.checkpoints.files import load_file

    _signal_while_saving(monkeypatch, step=1, times=1)
    assert _run(tmp_path, tiny_data, "trainer.max_steps=3", "checkpoint.every_n_steps=1") == 130
    err = capsys.readouterr().err
    assert "stopped after step 1 of 3 (SIGTERM)" in err
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step_00000001.ckpt"]
    assert load_file(ckpts / "last.ckpt")["global_step"] == 1
