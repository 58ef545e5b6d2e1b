"""Distillation's start removes the checkpoints killed runs were writing by the writer-aware sweep
(`io_temps.sweep_held_folder`): before, `run_folder._clear_partial_checkpoints` unlinked every `.*.tmp-*` of the
checkpoint folder whether or not its writer (the pid in the name) was running, and raised IsADirectoryError on a
temporary that is a folder. A live writer's temporary now stays; a dead writer's file and folder go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from geodino.io_temps import temp_name, writer_tag
from geodino.train.distill.run_folder import _clear_partial_checkpoints


def _dead_pid() -> int:
    """A pid that is not running: a child that has exited and been waited for."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_live_writer_is_kept_and_a_dead_writers_file_and_folder_go(tmp_path: Path, capsys) -> None:
    ckpts = tmp_path / "tiny" / "checkpoints"  # a student's own folder (students on their own ranks)
    ckpts.mkdir(parents=True)
    done = ckpts / "step_00000002.ckpt"
    done.write_bytes(b"done")
    live = temp_name(ckpts / "step_00000004.ckpt")
    assert str(os.getpid()) in live.name
    live.write_bytes(b"live")
    dead = _dead_pid()
    dead_file = ckpts / f".step_00000006.tmp-{writer_tag()}-{dead}.ckpt"
    dead_file.write_bytes(b"half")
    dead_dir = ckpts / f".step_00000008.tmp-{writer_tag()}-{dead}.ckpt"
    (dead_dir / "inner").mkdir(parents=True)
    (dead_dir / "inner" / "x.bin").write_bytes(b"z")
    old_form = ckpts / ".step_00000003.ckpt.tmp-9"  # an older geodino's name: the run holds its folder
    old_form.write_bytes(b"old")
    note = ckpts / ".notes.tmp-mine"  # no writer in the name: not a temporary of ours
    note.write_text("keep")

    _clear_partial_checkpoints(ckpts)  # raised IsADirectoryError on dead_dir before

    assert live.exists(), "a live writer's checkpoint temporary was removed"
    assert not dead_file.exists() and not dead_dir.exists() and not old_form.exists()
    assert done.exists() and note.exists()
    assert dead_file.name in capsys.readouterr().err  # said in one line


def test_no_folder_is_no_error(tmp_path: Path) -> None:
    _clear_partial_checkpoints(tmp_path / "checkpoints")  # a fresh run's folder holds no checkpoints yet
    assert not (tmp_path / "checkpoints").exists()  # nothing made where nothing was
