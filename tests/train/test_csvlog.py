"""The CSV logger continues metrics.csv after a resume: earlier rows stay, rows past the resume step are replaced."""

from __future__ import annotations

import csv

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
