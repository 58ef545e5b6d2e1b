"""Checkpoints and single-file outputs are synced to the disk around their rename (a power loss right after the
rename could leave an empty checkpoint under its final name: nothing called fsync), and a checkpoint the storage
refuses is a storage error, exit code 1 as in every other command (pretraining said 2, embed 1)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from geodino.errors import TrainingError


@pytest.fixture
def synced(monkeypatch) -> list[str]:
    """The paths `os.fsync` is called on, in order (read from the descriptor when it is called)."""
    seen: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def _trainer(step: int, write) -> SimpleNamespace:
    strategy = SimpleNamespace(broadcast=lambda x: x, barrier=lambda *a: None)
    return SimpleNamespace(global_step=step, strategy=strategy, is_global_zero=True, save_checkpoint=write)


def test_a_checkpoint_save_syncs_the_file_before_its_rename_and_the_folder_after(tmp_path, synced):
    from geodino.train.checkpoint_callback import CheckpointCallback

    folder = tmp_path / "checkpoints"
    written: list[Path] = []

    def write(path, weights_only=False):
        Path(path).write_bytes(b"checkpoint")
        written.append(Path(path))

    final = CheckpointCallback(folder, every_n_steps=1).save(_trainer(3, write))
    assert final == folder / "step_00000003.ckpt" and final.read_bytes() == b"checkpoint"
    tmp = str(written[0])
    assert tmp in synced and str(folder) in synced, synced
    assert synced.index(tmp) < synced.index(str(folder))  # the data first, then the rename


def test_an_atomic_file_write_syncs_the_file_and_its_folder_and_progress_records_do_not(tmp_path, synced):
    from geodino.embed.workdir import mark_done
    from geodino.io import atomic_path

    with atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text("{}")
    assert synced == [str(tmp), str(tmp_path)]
    synced.clear()
    (tmp_path / "work" / "done").mkdir(parents=True)
    mark_done(tmp_path / "work", 0, 5)  # one per row range of an embed run: not synced (too costly)
    assert synced == [] and (tmp_path / "work" / "done" / "0.done").read_text() == "5"


def test_a_full_disk_at_a_checkpoint_is_a_storage_error_with_exit_code_1(tmp_path):
    from geodino.cli import main
    from geodino.train.checkpoint_callback import CheckpointCallback

    def full(path, weights_only=False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    with pytest.raises(TrainingError) as info:
        CheckpointCallback(tmp_path / "checkpoints", every_n_steps=1).save(_trainer(2, full))
    assert info.value.exit_code == 1
    assert "cannot write checkpoint" in str(info.value) and "No space left on device" in str(info.value)
    assert not list((tmp_path / "checkpoints").iterdir())  # no temporary left

    def command(args):  # what the CLI does with it: one line, exit code 1
        raise info.value

    import geodino.train.commands as commands

    real = commands.register

    def register(sub):
        real(sub)
        sub.choices["pretrain"].set_defaults(func=command)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(commands, "register", register)
        assert main(["pretrain", "-c", str(tmp_path / "c.yaml")]) == 1
