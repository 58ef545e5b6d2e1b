"""A plain `geodino probe` (no --compare) into an --out holding an earlier comparison: the comparison's main column
described the earlier results.json, so it is removed when this run replaces the results (2de3211 did the same for
a --compare rerun). And a --compare run whose main backbone fails says, in its one line, that no comparison ran."""

from __future__ import annotations

import pytest

from geodino.eval.compare import run_comparison


@pytest.fixture
def compared(tmp_path, tiny_suite_cfg):
    """A suite config and an --out holding a finished comparison of `main` with `other`."""
    cfg = tiny_suite_cfg
    out = tmp_path / "out"
    run_comparison(cfg, "main", ["other"], out)
    assert (out / "comparison.md").is_file() and (out / "comparison.json").is_file()
    return cfg, out


def test_a_plain_rerun_removes_the_earlier_comparison(compared):
    from geodino.eval.runner import read_results, run_suite

    cfg, out = compared
    run_suite(cfg, "another", out, overwrite=True)
    assert read_results(out)["backbone"] == "another"
    assert not (out / "comparison.md").exists() and not (out / "comparison.json").exists()


def test_a_plain_rerun_failing_in_its_first_task_removes_the_earlier_comparison(compared, fail_tasks):
    from geodino.eval.runner import run_suite

    cfg, out = compared
    fail_tasks()
    with pytest.raises(RuntimeError, match="task failed"):
        run_suite(cfg, "another", out, overwrite=True)
    assert not (out / "comparison.md").exists() and not (out / "comparison.json").exists()


def test_a_failing_main_backbone_says_that_no_comparison_ran(compared, monkeypatch, capsys):
    """`geodino probe --compare`: the main backbone's task error is one line that also says the comparison
    backbones did not run, no comparison.md was written and OUT/compare/ holds an earlier run's results; the
    exit code is the task error's."""
    from geodino.cli import main
    from geodino.errors import InputError
    from geodino.eval import runner

    _cfg, out = compared

    def fail(*a, **k):
        exc = InputError("images of image_folder have different sizes")
        exc.exit_code = 3  # kept through the comparison's line
        raise exc

    monkeypatch.setattr(runner, "_call_task", fail)
    suite = out.parent / "suite.yaml"
    argv = ["probe", "-c", str(suite), "-b", "main", "--compare", "other", "--out", str(out)]
    code = main([*argv, "--overwrite", "progress=false"])  # --overwrite: out holds the earlier comparison
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1] == (
        "geodino: error: main backbone main failed: images of image_folder have different sizes; the 1 comparison "
        f"backbone (other) did not run and no comparison.md was written ({out / 'compare'} holds an earlier run's "
        "results)"
    )
    assert not (out / "comparison.md").exists() and (out / "compare" / "1_other" / "results.json").is_file()
