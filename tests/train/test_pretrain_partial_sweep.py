"""A used run folder's half-written checkpoints are removed at the start by the writer-aware sweep of
`geodino.io_temps` (`sweep_temps`): before, every `.*.tmp-*` in `checkpoints/` went whether or not its writer (the pid
in the name) was still running. A live writer's temporary now stays; a dead writer's file and folder (a sharded
checkpoint's) go, and a name of no temp_name form is left alone. The run holds its folder, so another host's or an
older geodino's checkpoint temporary is a killed run's too; another host's recent temporary of any other output (an
export written there) stays, as `sweep_temps` keeps it, and so do gathers' copies (`sweep_gathers` on resume)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from geodino.io_temps import temp_name, writer_tag
from geodino.train.pretrain_folder import clear_partial_checkpoints


def _dead_pid() -> int:
    """A pid that is not running: a child that has exited and been waited for."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_live_writer_kept_dead_file_and_folder_removed(tmp_path: Path, capsys):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    live = temp_name(folder / "step_000010.ckpt")  # this process's pid: a writer that runs
    assert str(os.getpid()) in live.name
    live.write_bytes(b"x" * 10)
    dead = _dead_pid()
    dead_file = folder / f".step_000020.tmp-{writer_tag()}-{dead}.ckpt"
    dead_file.write_bytes(b"y" * 10)
    dead_dir = folder / f".step_000030.tmp-{writer_tag()}-{dead}.ckpt"  # a sharded checkpoint's temporary
    (dead_dir / "shards").mkdir(parents=True)
    (dead_dir / "shards" / "0.distcp").write_bytes(b"z")
    other = folder / ".notes.tmp-mine"  # no writer pid: not a temp_name, not ours to remove
    other.write_text("keep")
    done = folder / "step_000005.ckpt"
    done.write_bytes(b"done")
    other_host = folder / ".step_000040.tmp-node-9_0123abcd-77.ckpt"  # a requeued run's, killed on another node
    other_host.write_bytes(b"h")
    legacy = folder / ".last.ckpt.tmp-1"  # older geodino's link name (pid 1 is alive: not this run's writer)
    legacy.symlink_to("step_000005.ckpt")
    export_live = folder / f".model.tmp-{writer_tag()}-{os.getpid()}.pt"
    export_other = folder / ".model.tmp-node-9_0123abcd-77.pt"  # another host's, written just now
    export_dead = folder / f".model.tmp-{writer_tag()}-{dead}.pt"
    gather = folder / f".step_000005.tmp-{writer_tag()}-{dead}.ckpt.full.pt"
    for p in (export_live, export_other, export_dead, gather):
        p.write_bytes(b"e")

    clear_partial_checkpoints(folder)

    assert live.exists(), "a live writer's temporary was removed"
    assert not dead_file.exists() and not dead_dir.exists()
    assert other.exists() and done.exists()
    assert not other_host.exists() and not legacy.is_symlink()
    assert export_live.exists() and export_other.exists() and not export_dead.exists()
    assert gather.exists()  # left to sweep_gathers
    err = capsys.readouterr().err
    assert dead_file.name in err and dead_dir.name in err and live.name not in err


def test_missing_folder_is_fine(tmp_path: Path):
    clear_partial_checkpoints(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()  # nothing made where nothing was
