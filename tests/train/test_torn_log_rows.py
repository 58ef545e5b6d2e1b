"""A log row that a kill cut short (no final newline) neither survives a resume nor breaks the curves."""

from __future__ import annotations

import csv

from geodino.train.curves import read_metrics
from geodino.train.distill.log_csv import append_row, drop_rows_from


def _torn_log(path):
    for s in (1, 2, 3):
        append_row(path, {"step": s, "loss": 0.5, "grad": 0.1})
    with path.open("a") as f:
        f.write("4,0.4")  # killed while writing step 4's row


def test_resume_drops_the_torn_row_and_starts_the_next_on_its_own_line(tmp_path):
    path = tmp_path / "log.csv"
    _torn_log(path)
    drop_rows_from(path, 4)  # the resume restarts at step 4
    append_row(path, {"step": 4, "loss": 0.45, "grad": 0.3})
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["loss"], r["grad"]) for r in rows] == [
        ("1", "0.5", "0.1"),
        ("2", "0.5", "0.1"),
        ("3", "0.5", "0.1"),
        ("4", "0.45", "0.3"),
    ]


def test_resume_after_the_torn_row_keeps_a_whole_file_unchanged(tmp_path):
    path = tmp_path / "log.csv"
    for s in (1, 2):
        append_row(path, {"step": s, "loss": 0.5})
    before = path.read_bytes()
    drop_rows_from(path, 3)
    assert path.read_bytes() == before


def test_curves_skip_a_torn_or_glued_row(tmp_path):
    path = tmp_path / "log.csv"
    _torn_log(path)
    append_row(path, {"step": 5, "loss": 0.45, "grad": 0.3})  # glued onto the torn row: "4,0.45,0.45,0.3"
    metrics = read_metrics([path])
    assert metrics["loss"] == {1: 0.5, 2: 0.5, 3: 0.5}
    assert metrics["grad"] == {1: 0.1, 2: 0.1, 3: 0.1}
