"""Run locks in job arrays (many geodino processes on shared folders, some on other nodes): a killed run's forked
workers kept its run folder and output locked under a pid that no longer ran, a filesystem that cannot lock refused
every run as "in use by another run" for ever, and the holder named no host (a pid of another node means nothing)."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from geodino.errors import InputError
from geodino.run_lock import (
    RUN_LOCK,
    lock_run_folder,
    locked_output,
    output_holder,
    output_lock_path,
    release_run_folder,
)

ROOT = Path(__file__).resolve().parents[1]

# a run holding its folder and an output, with a forked worker (as a DataLoader's) that outlives it when it is killed
_HOLD = """
import os, sys, time
from pathlib import Path
from geodino.run_lock import lock_run_folder, locked_output
lock_run_folder(Path(sys.argv[1]))
with locked_output(Path(sys.argv[2])):
    worker = os.fork()
    if worker == 0:
        time.sleep(30)
        os._exit(0)
    print(worker, flush=True)
    time.sleep(60)
"""


def test_a_killed_runs_forked_workers_do_not_keep_its_locks(tmp_path):
    run, out = tmp_path / "run", tmp_path / "f.tif"
    run.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run), str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    worker = int(proc.stdout.readline())
    try:
        with pytest.raises(InputError, match=rf"output_dir {re.escape(str(run))} is in use by another run") as folder:
            lock_run_folder(run)
        with pytest.raises(InputError, match=rf"output {re.escape(str(out))} is being written by another run") as file:
            with locked_output(out):
                pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        os.kill(worker, 0)  # its worker still runs
        lock_run_folder(run)  # and holds neither lock
        release_run_folder(run)
        with locked_output(out):
            assert output_holder(out) is None
        assert list(run.iterdir()) == [] and not output_lock_path(out).exists()
        holder = f"(pid {proc.pid} on {socket.gethostname()}"  # the host too: a pid of another node means nothing
        assert holder + ")" in str(folder.value) and holder + ", lock" in str(file.value), (folder.value, file.value)
    finally:
        proc.kill()
        proc.wait()
        os.kill(worker, signal.SIGKILL)


def test_a_filesystem_that_cannot_lock_runs_unlocked_and_says_so_once_per_folder(tmp_path, monkeypatch, capsys):
    """Lustre without `-o flock` (ENOSYS) or NFS without its lock daemon (ENOLCK) refuse flock itself; another
    process holding the lock is EWOULDBLOCK. The former read as a holder, so no run ever started there."""

    def no_locks(fh, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    run, out, left = tmp_path / "run", tmp_path / "f.tif", tmp_path / "g.tif"
    run.mkdir()
    output_lock_path(left).write_text("pid 4242 on node07")  # left by a run killed before
    lock_run_folder(run)
    release_run_folder(run)
    with locked_output(out), locked_output(tmp_path / "h.tif"):
        assert output_holder(left) is None
    lines = capsys.readouterr().err.splitlines()
    said = "is on a filesystem without file locks (No locks available); this run goes on unlocked"
    assert [ln.split(" is on ")[0] for ln in lines] == [f"geodino: {run}", f"geodino: {tmp_path}"], lines
    assert all(said in ln for ln in lines), lines
    assert not (run / RUN_LOCK).exists() and not output_lock_path(out).exists()
