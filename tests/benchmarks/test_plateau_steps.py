"""benchmarks/plateau.py's table on a short run: each value of a cell comes from a different logged step."""

from __future__ import annotations

import logging
import sys

import pytest

from tests.benchmarks.conftest import bench_module


@pytest.fixture(autouse=True)
def _lightning_level():
    """plateau.main() quiets Lightning's logger (ERROR) for good: restored, so later tests in this process see
    Lightning's INFO lines (tests/train/test_module.py's console test read nothing after this file in CI)."""
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    yield
    log.setLevel(level)


def _table_row(plateau, tmp_path, monkeypatch, capsys, metrics: dict) -> tuple[str, list[str]]:
    """Run plateau.main() for 20 steps of the recipe with `metrics` as the run's logged metrics (nothing trained):
    its printed output and the cells of the recipe's row."""
    import geodino.train.curves as curves
    import geodino.train.pretrain as pretrain

    monkeypatch.setattr(plateau, "CHIPS", tmp_path)
    monkeypatch.setattr(plateau, "_plot", lambda *a, **k: None)
    monkeypatch.setattr(pretrain, "pretrain", lambda cfg: tmp_path / "run")
    monkeypatch.setattr(curves, "find_metrics", lambda run: [])
    monkeypatch.setattr(curves, "read_metrics", lambda paths: metrics)
    argv = ["plateau.py", "--steps", "20", "--variants", "recipe", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", [*argv, "--png", str(tmp_path / "p.png")])
    assert plateau.main() == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| recipe |"))
    return out, [c.strip() for c in row.strip("|").split("|")]


def test_a_short_run_prints_each_logged_step_once(tmp_path, monkeypatch, capsys):
    """A 20-step run that logged steps 9 and 19 (log_every_n_steps 10 before 9a185a6 added step 0). The marks 0,
    5, 10 and 15 all had 9 or 19 as their nearest logged step, so each cell read 'a / a / a / b' (a real 10-step run
    at 53469a2: its step-9 values three times); now the header names the logged steps [9, 19] and each cell holds
    their two values."""
    plateau = bench_module("plateau")
    metrics = {key: {9: 6.0 - k, 19: 5.5 - k} for k, (key, _) in enumerate(plateau.KEYS)}
    out, cells = _table_row(plateau, tmp_path, monkeypatch, capsys, metrics)
    assert "values at the logged steps [9, 19]" in out
    assert cells[1:] == ["6 / 5.5", "5 / 4.5", "4 / 3.5", "3 / 2.5", "2 / 1.5", "1 / 0.5"], cells


def test_a_series_never_logged_is_a_dash(tmp_path, monkeypatch, capsys):
    """A diagnostic absent from the metrics (here the monitors) is '-'; the table raised on an empty min() before."""
    plateau = bench_module("plateau")
    metrics = {"dino_global_loss": {9: 6.1, 19: 5.2}, "ibot_loss": {9: 3.1, 19: 2.9}}
    _, cells = _table_row(plateau, tmp_path, monkeypatch, capsys, metrics)
    assert cells[1:] == ["6.1 / 5.2", "3.1 / 2.9", "-", "-", "-", "-"], cells


def test_report_steps_are_distinct_and_follow_the_marks():
    plateau = bench_module("plateau")
    runs = {"a": {"dino_global_loss": dict.fromkeys(range(9, 200, 10), 1.0)}}
    assert plateau.report_steps(runs, 200) == [9, 49, 99, 199]
    assert plateau.report_steps({"a": {"dino_global_loss": {9: 1.0}}}, 10) == [9]
    assert plateau.report_steps({"a": {}}, 10) == []
