"""A pretraining run logs step 0, the untrained loss a reader checks against ln K (the official MetricLogger prints
iteration 0, and `geodino distill` logs step 0). Lightning's rule logs step log_every_n_steps - 1 first (9 by
default), so metrics.csv, curves.png and the closing line began after 9 updates."""

from __future__ import annotations

import csv

from geodino.cli import main
from tests.train.conftest import ln_k_plateau, write_config


@ln_k_plateau
def test_a_run_logs_step_0_then_every_n_steps(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    over = ["trainer.log_every_n_steps=2", "trainer.max_steps=4", "checkpoint.every_n_steps=4"]
    assert main(["pretrain", "-c", str(cfg), *over]) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 3]
    assert rows[0]["dino_global_loss"] != "" and float(rows[0]["sched/lr"]) == 0.0  # the warm-up's first lr
    assert " at the start -> " in capsys.readouterr().out
