"""A task-level `seed` that differs from the suite's is refused in one line: the runner gives every task the
suite's seed, so `tasks.<name>.seed=7` was replaced by 0 without a word (results.json then recorded 0)."""

from __future__ import annotations

import geodino.cli
from geodino.eval import runner
from tests.eval.test_runner import _suite


def test_a_task_seed_other_than_the_suites_is_one_line(tmp_path, monkeypatch, capsys, tiny_probe_backbone):
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    suite, out = _suite(tmp_path), tmp_path / "out"
    argv = ["probe", "-c", str(suite), "-b", "tiny", "--out", str(out), "progress=false"]
    assert geodino.cli.main([*argv, "tasks.folder_knn_linear.seed=7"]) == 2  # before: 0, run with seed 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "geodino: error: tasks.folder_knn_linear.seed=7: every task runs with the suite's seed (0); set the suite "
        "key seed=7 (or --seeds for several) and drop tasks.folder_knn_linear.seed"
    )
    assert not (out / "results.json").exists()
    # the suite's own seed, said again for a task, is no conflict
    assert geodino.cli.main([*argv, "seed=3", "tasks.folder_knn_linear.seed=3", "only=[folder_knn_linear]"]) == 0
    assert runner.read_results(out)["configs"]["folder_knn_linear"]["seed"] == 3
