"""Lock files at the edges of the filesystem: a long output name (`.NAME.geodino.lock` past 255 bytes could not be
made, and such a run went on unlocked) and a full disk while the holder is written (the empty lock file stayed
beside the output of the failed run)."""

from __future__ import annotations

import errno
import os

from geodino import run_lock
from geodino.run_lock import locked_output, output_lock_path


def test_the_lock_of_a_long_name_fits_a_name_and_locks(tmp_path):
    out = tmp_path / ("é" * 120 + ".tif")  # 244 bytes: + ".geodino.lock" and the dot was 258
    lock = output_lock_path(out)
    assert len(lock.name.encode()) <= 255 and lock.parent == tmp_path and lock.name.startswith(".")
    with locked_output(out):
        assert lock.is_file()
        assert f"pid {os.getpid()}" in lock.read_text()


def test_a_full_disk_while_the_holder_is_written_leaves_no_lock_file(tmp_path, monkeypatch):
    out = tmp_path / "o.tif"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_lock, "_holder_text", full)
    with locked_output(out):  # the writer goes on unlocked, as beside a read-only parent; its own write says why
        assert not output_lock_path(out).exists()
    assert not output_lock_path(out).exists()  # was left behind, empty
