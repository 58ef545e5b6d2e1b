"""`geodino data stats` checks that its outputs can be written before it reads a pixel: a --plot in a folder that
cannot be made failed only after every tile was read, `write_stats` in Python checked neither output, and an output
on a pseudo filesystem (/proc, where root may "write" but no file can be made) was a FileNotFoundError traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

import geodino.data.stats as stats
import geodino.io as io
from geodino.errors import InputError
from tests.embed.conftest import write_tif
from tests.test_bad_inputs import one_line_exit_2


@pytest.fixture
def no_reading(monkeypatch):
    """compute_stats fails the test: the refusal must come before any tile is read."""

    def read(*args, **kwargs):
        raise AssertionError("statistics were computed before the outputs were checked")

    monkeypatch.setattr(stats, "compute_stats", read)


def _tif(tmp_path: Path) -> Path:
    return write_tif(tmp_path / "in.tif", np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))


def test_a_plot_in_a_folder_that_cannot_be_made_is_refused_before_reading(tmp_path, capsys, no_reading) -> None:
    (tmp_path / "file").write_text("x")  # a file where the plot's folder would go
    src, plot = _tif(tmp_path), tmp_path / "file" / "p.png"
    one_line_exit_2(
        capsys, tmp_path, "data", "stats", src, "--out", tmp_path / "s.yaml", "--plot", plot, expect=("file",)
    )


@pytest.mark.parametrize("which", ["out", "plot"])
def test_write_stats_checks_both_outputs_first(tmp_path, no_reading, which: str) -> None:
    (tmp_path / "file").write_text("x")
    bad, good = tmp_path / "file" / f"x.{'yaml' if which == 'out' else 'png'}", tmp_path / "ok.yaml"
    out, plot = (bad, None) if which == "out" else (good, bad)
    with pytest.raises(InputError, match="is a file, not a folder"):
        stats.write_stats([str(tmp_path / "in.tif")], out, plot=plot)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_in_proc_is_one_line(tmp_path, capsys, no_reading) -> None:
    # root: no file can be created there (the new check); another user: /proc is not writable (os.access)
    line = one_line_exit_2(capsys, tmp_path, "data", "stats", _tif(tmp_path), "--out", "/proc/geodino-x.yaml")
    assert "output folder /proc" in line and ("special filesystem such as /proc" in line or "not writable" in line)


@pytest.mark.parametrize(
    ("code", "error", "says"),
    [
        (errno.EROFS, InputError, r"^cannot create files in output folder .*\(Read-only file system\); choose a "),
        (errno.ENOSPC, io.StorageError, r"^the storage refused a write in output folder .*\(No space left on device\)"),
    ],
)
def test_a_folder_where_no_file_can_be_made_is_one_line_naming_why(tmp_path, monkeypatch, code, error, says) -> None:
    real = os.open

    def refused(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(error, match=says) as info:
        io.check_writable(tmp_path / "out.tif")
    assert info.value.exit_code == (1 if code == errno.ENOSPC else 2)  # a full disk is the storage's, as at a write
    monkeypatch.setattr(os, "open", real)
    assert io.check_writable(tmp_path / "out.tif") == tmp_path / "out.tif"  # a writable folder passes
    assert list(tmp_path.iterdir()) == []  # and the check leaves nothing behind
