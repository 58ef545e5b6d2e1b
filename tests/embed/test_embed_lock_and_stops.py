"""`geodino embed` locks its output and says how to finish what it leaves: a second run onto an --out another run
writes was told to --resume (and then attached to the live work folder and died with a zarr traceback) or, with
--overwrite, wrote the same file as the first; a full disk said "run the same command again", which the partial
output then refused; Ctrl-C said nothing about --resume; SIGTERM killed the process with no line at all."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodino import cli
from geodino.embed import embed_raster
from geodino.embed.pipeline import work_dir_for
from geodino.errors import InputError
from geodino.run_lock import output_lock_path
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2
from tests.test_output_locks import held_by_another_run

SPEC = "arch:vit_tiny?depth=1&seed=0&patch_size=8"


def _input(tmp_path: Path) -> Path:
    return write_tif(tmp_path / "in.tif", random_image(32, 32))


def _args(src: Path, out: Path, *extra: str) -> list[str]:
    return ["embed", str(src), "-b", SPEC, "--out", str(out), "--tile", "32", "--overlap", "8", "--no-progress", *extra]


def _live_partial(out: Path) -> Path:
    """The work folder of a run still writing `out` (what it holds does not matter: it must stay untouched)."""
    work = work_dir_for(out)
    (work / "store.zarr").mkdir(parents=True)
    (work / "plan.json").write_text("{}")
    return work


def test_embed_onto_an_output_another_run_writes_is_one_line_and_touches_nothing(tmp_path, capsys):
    src, out = _input(tmp_path), tmp_path / "f.tif"
    _live_partial(out)
    with held_by_another_run(out):
        for extra in ((), ("--resume",), ("--overwrite",)):  # none attaches to, or removes, the live run's work
            one_line_exit_2(
                capsys, tmp_path, *_args(src, out, *extra),
                expect=(f"output {out} is being written by another run (pid 4242",),
            )  # fmt: skip
        with pytest.raises(InputError, match="is being written by another run"):  # the Python call too
            embed_raster(src, SPEC, out, overwrite=True, progress=False)
    assert (work_dir_for(out) / "plan.json").read_text() == "{}"


def test_a_rank_holding_the_output_keeps_a_single_run_out_and_a_rank_its_own_rank(tmp_path, capsys):
    """Ranks of --world-size share an output, each under a lock of its own rank: a single-process run refuses
    while one of them runs, and a second process of the same rank refuses too."""
    src, out = _input(tmp_path), tmp_path / "f.tif"
    _live_partial(out)
    with held_by_another_run(out.with_name("f.tif.rank1")):
        one_line_exit_2(capsys, tmp_path, *_args(src, out, "--overwrite"), expect=("(pid 4242",))
        one_line_exit_2(
            capsys, tmp_path, *_args(src, out, "--world-size", "2", "--rank", "1"),
            expect=(f"rank 1 of output {out} is being written by another run",),
        )  # fmt: skip


def test_a_partial_output_without_a_live_run_suggests_resume_and_the_run_leaves_no_lock(tmp_path, capsys):
    src, out = _input(tmp_path), tmp_path / "f.tif"
    assert cli.main(_args(src, out)) == 0
    assert out.exists() and not output_lock_path(out).exists()
    _live_partial(tmp_path / "g.tif")  # left by a killed run: nobody holds the lock
    one_line_exit_2(capsys, tmp_path, *_args(src, tmp_path / "g.tif"), expect=("pass --resume to finish it",))


def test_a_full_disk_during_embed_says_to_resume_and_resume_finishes(tmp_path, capsys, monkeypatch):
    import geodino.embed.pipeline as pipeline

    src, out = _input(tmp_path), tmp_path / "f.tif"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / ".f.tmp-x.tif"))

    with monkeypatch.context() as mp:
        mp.setattr(pipeline, "_finalize", full)
        capsys.readouterr()
        assert cli.main(_args(src, out)) == 1  # a storage error: exit 1, as docs/errors.md says
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: error")]
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert f"run it again with --resume to finish {out} (its partial output {work_dir_for(out)} is kept)" in err[0]
    assert work_dir_for(out).exists() and not out.exists()
    assert cli.main(_args(src, out, "--resume")) == 0 and out.exists()  # what the line says works


def test_ctrl_c_during_embed_says_to_resume(tmp_path, capsys, monkeypatch):
    from geodino.embed.sweep import Sweeper

    def interrupted(self, todo):
        raise KeyboardInterrupt

    src, out = _input(tmp_path), tmp_path / "f.tif"
    monkeypatch.setattr(Sweeper, "run", interrupted)
    capsys.readouterr()
    assert cli.main(_args(src, out)) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"geodino: interrupted; run it again with --resume to finish {out} (its partial output {work_dir_for(out)} "
        "is kept)"
    ), err
    assert work_dir_for(out).is_dir() and not output_lock_path(out).exists()


_SLOW_EMBED = """
import sys, time
from geodino.embed.sweep import Sweeper
run = Sweeper.run
def slow(self, todo):  # the work folder is there; the sweep waits, as a long raster's would
    time.sleep(60)
    return run(self, todo)
Sweeper.run = slow
from geodino.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_embed_is_an_interrupt_with_exit_143(tmp_path):
    src, out = _input(tmp_path), tmp_path / "f.tif"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_EMBED, *_args(src, out)], stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        t0 = time.monotonic()
        while not (work_dir_for(out) / "plan.json").exists():
            assert proc.poll() is None and time.monotonic() - t0 < 60, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == (
        f"geodino: interrupted; run it again with --resume to finish {out} (its partial output {work_dir_for(out)} "
        "is kept)"
    ), err
    assert "Traceback" not in err and not output_lock_path(out).exists()  # the run's own clean-up ran


def test_sigterm_handler_is_restored_and_training_takes_it_over_and_back():
    from geodino.train.stop import StopRequest

    before = signal.getsignal(signal.SIGTERM)
    with cli.sigterm_as_interrupt():
        ours = signal.getsignal(signal.SIGTERM)
        with pytest.raises(cli.Terminated):
            signal.raise_signal(signal.SIGTERM)
        with StopRequest() as stop:  # pretraining's fit: SIGTERM saves a checkpoint and stops (exit 130)
            signal.raise_signal(signal.SIGTERM)
            assert stop.signal == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is ours
    assert signal.getsignal(signal.SIGTERM) == before
