"""`geodino probe` without --config (and without tasks.* overrides) says that no suite was given and names the
shipped ones; it said "the probe suite has no tasks: add a 'tasks:' mapping", of a suite the user never wrote."""

from __future__ import annotations


def test_probe_without_a_config_asks_for_one_and_names_the_shipped_suites(tmp_path, capsys):
    from geodino.cli import main

    assert main(["probe", "-b", "baseline:colour", "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("geodino: error: no probe suite: pass --config SUITE.yaml"), lines[0]
    assert "eurosat_knn_linear" in lines[0] and "demo" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_suite_given_as_overrides_only_still_reads_them(tmp_path, capsys):
    from geodino.cli import main

    assert main(["probe", "-b", "baseline:colour", "-o", str(tmp_path / "out"), "tasks.a.type=nosuch"]) == 2
    assert "tasks.a.type='nosuch' is not a task type" in capsys.readouterr().err
