"""The CSV logger continues metrics.csv after a resume: earlier rows stay, rows past the resume step are replaced."""

from __future__ import annotations

import contextlib
import csv

import pytest

from geodino.train.csvlog import ContinuingCSVLogger


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _log(tmp_path, steps, extra=None):
    logger = ContinuingCSVLogger(save_dir=str(tmp_path), name="logs", version="")
    for s in steps:
        logger.log_metrics({"loss": float(s), **(extra or {})}, step=s)
    logger.save()
    return tmp_path / "logs" / "metrics.csv"


def test_resumed_run_continues_the_file_and_replaces_rows_after_the_checkpoint(tmp_path):
    path = _log(tmp_path, range(6))  # killed at step 5, last checkpoint at step 3
    path = _log(tmp_path, range(3, 8), extra={"sched/lr": 0.1})  # resumed at 3, logs a new column too
    rows = _rows(path)
    assert [int(r["step"]) for r in rows] == list(range(8))
    assert [r["sched/lr"] for r in rows] == [""] * 3 + ["0.1"] * 5
    assert list((tmp_path / "logs").iterdir()) == [path]


def test_fresh_run_in_the_same_folder_starts_a_fresh_file(tmp_path):
    _log(tmp_path, range(4))
    path = _log(tmp_path, range(2))
    assert [int(r["step"]) for r in _rows(path)] == [0, 1]


def test_a_resumed_run_killed_before_its_first_save_keeps_the_old_rows(tmp_path):
    path = _log(tmp_path, range(3))
    assert ContinuingCSVLogger(save_dir=str(tmp_path), name="logs", version="").experiment  # started, no save
    assert [int(r["step"]) for r in _rows(path)] == [0, 1, 2]


def test_a_row_a_kill_cut_short_is_dropped_on_resume(tmp_path):
    path = _log(tmp_path, range(4))
    with open(path, "a") as f:  # killed while appending step 4: "4," and no newline
        f.write("4,")
    path = _log(tmp_path, range(4, 6))
    assert [int(r["step"]) for r in _rows(path)] == [0, 1, 2, 3, 4, 5]
    assert all(None not in r and None not in r.values() for r in _rows(path))


def test_a_new_column_rewrites_the_file_under_a_temporary_name(tmp_path, monkeypatch):
    import geodino.io as gio

    path = _log(tmp_path, range(3))
    logger = ContinuingCSVLogger(save_dir=str(tmp_path), name="logs", version="")
    logger.log_metrics({"loss": 3.0}, step=3)
    logger.save()  # the continuing save: the kept rows plus step 3
    before = path.read_bytes()
    logger.log_metrics({"loss": 4.0, "sched/wd": 0.04}, step=4)  # a new column: Lightning rewrites the header
    written = []
    real = gio.atomic_path

    @contextlib.contextmanager
    def disk_full_after_writing(p, **kw):  # the rows are written, then the disk fills before the rename
        written.append(p)
        with real(p, **kw) as tmp:
            yield tmp
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(gio, "atomic_path", disk_full_after_writing)
    with pytest.raises(OSError, match="No space"):
        logger.save()
    assert written, "the header rewrite did not go through atomic_path"
    assert path.read_bytes() == before  # the earlier rows are intact
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["metrics.csv"]
