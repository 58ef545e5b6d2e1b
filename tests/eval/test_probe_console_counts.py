"""`geodino probe` prints its summary rows with counts as whole numbers (n_train 9, not 9.0000), as results.md
shows them, and scores with 4 decimals."""

from __future__ import annotations

import argparse

from geodino.eval import commands, runner


def test_console_summary_prints_counts_as_integers(tmp_path, monkeypatch, capsys):
    rows = [
        {"task": "t", "metric": "knn_top1", "value": 0.5},
        {"task": "t", "metric": "n_train", "value": 9.0},
    ]
    monkeypatch.setattr(runner, "run_suite", lambda cfg, backbone, out, overwrite: rows)
    args = argparse.Namespace(compare=[], backbone="tiny", out=str(tmp_path), overwrite=False)
    assert commands._probe_locked(args, cfg=None) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert lines == [["t", "knn_top1", "0.5000"], ["t", "n_train", "9"]]
