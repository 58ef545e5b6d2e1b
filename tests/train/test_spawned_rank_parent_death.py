"""`trainer.strategy=ddp_spawn` with its launching process killed (SIGKILL): the run folder's lock was that process's,
so the OS freed it at once while the spawned ranks still ran (torch's SIGINT to them is a stop request: finish the
step, save it), and a resume into the folder started beside them. Now each rank holds a lock of its own, which
`lock_run_folder` refuses on, and a rank still running a while after its parent died exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodino.errors import InputError
from geodino.run_lock import lock_run_folder, release_run_folder
from tests.train.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]

# a launching process holding the folder, and a spawned "rank" that ignores SIGINT and never ends by itself
_LAUNCH = """
import multiprocessing, signal, sys, time
from pathlib import Path

def rank(out):
    from geodino.train.spawned_rank import guard_spawned_rank
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert guard_spawned_rank(Path(out), 1, grace=2.0)
    print("guarded", flush=True)
    time.sleep(120)

if __name__ == "__main__":
    from geodino.run_lock import lock_run_folder
    lock_run_folder(Path(sys.argv[1]))
    child = multiprocessing.get_context("spawn").Process(target=rank, args=(sys.argv[1],))
    child.start()
    print(child.pid, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _lock_when_free(run: Path, pids: list[int], within: float) -> list[str]:
    """Take the folder's lock as a resume would, as soon as it is free; every refusal's line on the way. While any
    of `pids` still runs, the lock must be refused."""
    refusals: list[str] = []
    end = time.monotonic() + within
    while time.monotonic() < end:
        running = [p for p in pids if _alive(p)]
        try:
            lock_run_folder(run)
        except InputError as exc:
            refusals.append(str(exc))
            time.sleep(0.2)
            continue
        release_run_folder(run)
        time.sleep(0.5)  # a rank's lock is freed as its files close on exit, a moment before it is a zombie
        running = [p for p in running if _alive(p)]
        assert not running, f"the run folder was free while ranks {running} of the killed run still ran"
        return refusals
    raise AssertionError(f"the run folder stayed locked for {within} s: {refusals[-1:]}")


def test_a_spawned_rank_holds_the_folder_after_its_parent_is_killed_and_exits(tmp_path):
    from geodino.run_lock import run_rank_lock

    run, script = tmp_path / "run", tmp_path / "launch.py"  # a file: a spawned child imports its parent's main
    run.mkdir()
    script.write_text(_LAUNCH)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    launcher = subprocess.Popen(
        [sys.executable, str(script), str(run)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(launcher.stdout.readline())
        assert launcher.stdout.readline().strip() == "guarded"
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        assert _alive(child)
        with pytest.raises(InputError, match=r"in use by rank 1 of an earlier run \(pid \d+ on .*\) whose launching"):
            lock_run_folder(run)
        refusals = _lock_when_free(run, [child], within=30)
        assert refusals and not _alive(child)  # it held the folder until the watcher ended it
        assert "the process that started it" in launcher.stderr.read()
        assert not run_rank_lock(run, 1).exists() or not _alive(child)
    finally:
        launcher.kill()
        launcher.wait()


def test_the_launching_process_itself_takes_no_rank_lock(tmp_path):
    """`guard_spawned_rank` in a process no multiprocessing parent started (the command's own, or a torchrun rank)
    does nothing: the folder's own lock is the one it holds."""
    from geodino.run_lock import run_rank_lock
    from geodino.train.spawned_rank import guard_spawned_rank

    assert guard_spawned_rank(tmp_path, 0) is False
    assert not run_rank_lock(tmp_path, 0).exists()


def _children(pid: int) -> list[int]:
    """The processes `pid` started that run a rank (multiprocessing's spawn_main; not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            args = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == pid and b"spawn_main" in args:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_resume_after_a_killed_ddp_spawn_run_never_runs_beside_its_ranks(tmp_path, tiny_data):
    """The real run: two CPU ranks training, the command's process SIGKILLed; the folder is refused while a rank
    of the killed run still runs, and free once they are gone (within GRACE_S)."""
    cfg = write_config(tmp_path / "tiny.yaml", tmp_path / "run", tiny_data)
    args = [
        "trainer.strategy=ddp_spawn",
        "trainer.devices=2",
        "trainer.max_steps=1000",
        "checkpoint.every_n_steps=1000",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "geodino.cli", "pretrain", "-c", str(cfg), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = tmp_path / "run" / "logs" / "metrics.csv"
    try:
        end = time.monotonic() + 400
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) > 2):  # the ranks are training
            assert proc.poll() is None and time.monotonic() < end
            time.sleep(0.5)
        ranks = _children(proc.pid)
        assert len(ranks) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _lock_when_free(tmp_path / "run", ranks, within=120)
    finally:
        proc.kill()
        proc.wait()
