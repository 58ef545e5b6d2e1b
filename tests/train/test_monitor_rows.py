"""The collapse monitors are computed at the steps metrics.csv logs (step 0, then every N-1, 2N-1, ... when
`ssl.monitor.every` equals `trainer.log_every_n_steps`, 10 and 10 in the shipped configs). They were computed at 0,
N, 2N: each later row carried the values of N-1 steps before, and curves.png drew them at the wrong step."""

from __future__ import annotations

import csv

from geodino.cli import main
from tests.train.conftest import ln_k_plateau, write_config

# not the teacher entropy: this tiny teacher (LayerScale 1e-5) gives near-uniform targets, ln K at every step
MONITORS = ("monitor/student_teacher_kl", "monitor/teacher_cls_spread", "monitor/student_feature_std")


@ln_k_plateau
def test_every_logged_row_has_the_monitors_of_its_own_step(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    over = ["trainer.log_every_n_steps=2", "ssl.monitor.every=2", "trainer.max_steps=4", "checkpoint.every_n_steps=4"]
    assert main(["pretrain", "-c", str(cfg), *over]) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 3]
    for key in MONITORS:  # each step's batch gives other values: a repeated value is a stale copy
        values = [r[key] for r in rows]
        assert "" not in values and len(set(values)) == len(values), (key, values)
