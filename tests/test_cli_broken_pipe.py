"""A reader that closes the output early (`geodino data sensors | head -1`, `| true`) ends the command quietly with
exit code 141 (128 + SIGPIPE, as a shell reports a tool the closed pipe stopped): it ended in a BrokenPipeError
traceback and exit code 1. A broken pipe that is not stdout (a worker's) keeps its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geodino import cli


def _sensors() -> subprocess.Popen:
    """`geodino data sensors` with its stdout and stderr as pipes this test reads (or closes)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "geodino.cli", "data", "sensors"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    return proc


def test_a_reader_that_closes_early_ends_the_command_quietly() -> None:
    proc = _sensors()
    proc.stdout.close()  # the reader goes before the command writes (its imports take longer than this)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == cli.OUTPUT_CLOSED_EXIT == 141, err
    assert err == "", err  # no traceback, no "Exception ignored" at exit


def test_a_reader_that_reads_one_line_sees_the_first_line() -> None:
    """`| head -1` as a pipeline runs it: the first line arrives whole, whatever the command's exit code."""
    proc = _sensors()
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) in (0, cli.OUTPUT_CLOSED_EXIT), err
    assert first.endswith("\n") and " bands " in first and err == "", (first, err)


def test_a_broken_pipe_that_is_not_stdout_keeps_its_traceback(monkeypatch) -> None:
    def worker_gone(argv):
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a worker process's pipe; stdout is still read

    monkeypatch.setattr(cli, "_main", worker_gone)
    with pytest.raises(BrokenPipeError):
        cli.main(["data", "sensors"])
