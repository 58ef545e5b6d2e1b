"""The probe results tables: Wilson intervals of proportion scores, the Δ sign convention and overlap note in
comparison.md, the run's version and command line in results.json, and a failing comparison backbone."""

from __future__ import annotations

import json
import math

import pytest

from geodino.eval.compare import comparison_markdown, comparison_rows, run_comparison
from geodino.eval.results import add_intervals, wilson_interval
from tests.eval.test_runner import _suite  # the tiny image-folder suite on generated chips


def test_wilson_interval_matches_the_hand_computed_31_of_40():
    # p = 31/40 = 0.775, z = 1.959964, z^2 = 3.841459: denom = 1 + z^2/40 = 1.0960365,
    # centre = (0.775 + z^2/80) / denom = 0.7509037, half = z/denom * sqrt(p(1-p)/40 + z^2/6400) = 0.1259367
    lo, hi = wilson_interval(31 / 40, 40)
    assert lo == pytest.approx(0.624967, abs=1e-5) and hi == pytest.approx(0.876840, abs=1e-5)
    lo, hi = wilson_interval(1.0, 27)  # a perfect score still has a lower bound below 1
    assert hi == pytest.approx(1.0) and lo == pytest.approx(27 / (27 + 1.959964**2), abs=1e-6)
    with pytest.raises(ValueError, match=r"needs n > 0 and 0 <= p <= 1, got p=0.5, n=0"):
        wilson_interval(0.5, 0)


def test_only_proportion_metrics_get_an_interval():
    rows = [{"metric": m, "value": 0.775} for m in ("knn_top1@k20", "linear_top1", "logreg_top5", "linear_macro_f1",
                                                    "knn_balanced_acc", "mIoU", "pixel_acc", "MAE")]  # fmt: skip
    add_intervals(rows, 40)
    got = {r["metric"]: r.get("ci95") for r in rows}
    assert [m for m, ci in got.items() if ci] == ["knn_top1@k20", "linear_top1", "logreg_top5"]
    assert got["linear_top1"] == pytest.approx([0.624967, 0.876840], abs=1e-5)
    assert rows[1]["n_eval"] == 40


def test_the_suite_writes_intervals_version_and_command(tmp_path, tiny_probe_backbone):
    from geodino.config import load_config
    from geodino.eval.runner import SuiteConfig, read_results, run_suite

    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false"])
    rows = run_suite(cfg, "tiny", tmp_path / "out")
    res = read_results(tmp_path / "out")
    n = json.loads((tmp_path / "out" / "folder_knn_linear" / "classification.json").read_text())["n_eval"]
    top1 = next(r for r in res["rows"] if r["metric"] == "linear_top1")
    assert top1["n_eval"] == n and top1["ci95"] == pytest.approx(list(wilson_interval(top1["value"], n)), abs=1e-6)
    assert "ci95" not in next(r for r in rows if r["metric"] == "linear_balanced_acc")
    from geodino import __version__

    assert res["geodino_version"] == __version__ and res["command"] and res["seed"] == 0
    md = (tmp_path / "out" / "results.md").read_text()
    lo, hi = top1["ci95"]
    assert f"| folder_knn_linear | linear_top1 | {top1['value']:.4f} | {n} | [{lo:.4f}, {hi:.4f}] |" in md


def test_comparison_states_the_sign_and_marks_deltas_within_the_intervals():
    a = [{"task": "t", "metric": "knn_top1", "value": 0.775, "ci95": list(wilson_interval(0.775, 40))},
         {"task": "t", "metric": "linear_top1", "value": 0.5, "ci95": list(wilson_interval(0.5, 40))},
         {"task": "h", "metric": "RMSE", "value": 3.0}, {"task": "h", "metric": "bias", "value": 0.2},
         {"task": "h", "metric": "block_R2", "value": math.nan}]  # fmt: skip
    b = [{"task": "t", "metric": "knn_top1", "value": 0.8, "ci95": list(wilson_interval(0.8, 40))},
         {"task": "t", "metric": "linear_top1", "value": 0.95, "ci95": list(wilson_interval(0.95, 40))},
         {"task": "h", "metric": "RMSE", "value": 2.5}, {"task": "h", "metric": "block_R2", "value": 0.4}]  # fmt: skip
    md = comparison_markdown([("a", a), ("b", b)], "s")
    assert "| t | knn_top1 | 0.7750 | 0.8000 | +0.0250 † |" in md  # [0.62, 0.88] and [0.65, 0.90] overlap
    assert "| t | linear_top1 | 0.5000 | 0.9500 | +0.4500 |" in md  # [0.35, 0.65] and [0.84, 0.99] do not
    assert "† the two backbones' 95 % Wilson intervals" in md
    assert "except for RMSE (errors: lower is better, so a negative Δ is an improvement)" in md
    assert "for bias closer to 0 is better" in md
    assert "| h | RMSE | 3.0000 | 2.5000 | -0.5000 |" in md
    assert "| h | bias | 0.2000 | - | - |" in md and "| h | block_R2 | nan | 0.4000 | - |" in md
    rows = comparison_rows([("a", a), ("b", b)])
    assert [r["better"] for r in rows] == ["higher", "higher", "lower", "zero", "higher"]


def test_a_failing_comparison_backbone_keeps_the_others_and_fails_in_one_line(tmp_path, broken_specs, tiny_suite_cfg):
    from geodino.errors import GeoDinoError

    broken_specs.add("broken")
    cfg = tiny_suite_cfg
    out = tmp_path / "out"
    with pytest.raises(GeoDinoError) as caught:
        run_comparison(cfg, "main", ["broken", "other"], out)
    msg = str(caught.value)
    assert len(msg.splitlines()) == 1 and caught.value.exit_code == 2
    assert msg.startswith("comparison backbone broken failed: checkpoint broken cannot be read; the other")
    table = json.loads((out / "comparison.json").read_text())
    assert table["failed"] == {"broken": "checkpoint broken cannot be read"}
    assert table["seed"] == 0 and table["geodino_version"] and table["command"]
    top1 = next(r for r in table["rows"] if r["metric"] == "linear_top1")
    assert top1["values"]["broken"] is None and top1["values"]["other"] is not None  # the last one still ran
    md = (out / "comparison.md").read_text()
    assert "- `broken` failed (tasks it finished before are shown): checkpoint broken cannot be read" in md
    assert (out / "compare" / "2_other" / "results.json").is_file()


def test_a_failed_rerun_does_not_show_the_earlier_runs_numbers(tmp_path, broken_specs, tiny_suite_cfg):
    from geodino.errors import GeoDinoError

    cfg = tiny_suite_cfg
    out = tmp_path / "out"
    run_comparison(cfg, "main", ["flaky"], out)  # a first run leaves compare/1_flaky/results.json
    broken_specs.add("flaky")
    with pytest.raises(GeoDinoError, match="comparison backbone flaky failed"):
        run_comparison(cfg, "main", ["flaky"], out, overwrite=True)
    table = json.loads((out / "comparison.json").read_text())
    assert all(r["values"]["flaky"] is None for r in table["rows"])  # not the first run's numbers


def test_a_rerun_failing_in_its_first_task_replaces_the_earlier_table(tmp_path, fail_tasks, tiny_probe_backbone):
    from geodino.config import load_config
    from geodino.eval.runner import SuiteConfig, read_results, run_suite

    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false"])
    out = tmp_path / "out"
    run_suite(cfg, "tiny", out)
    first = read_results(out)
    assert first["rows"]
    fail_tasks()
    with pytest.raises(RuntimeError, match="task failed"):
        run_suite(cfg, "tiny", out, overwrite=True)
    again = read_results(out)
    assert again["rows"] == [] and again["started"] >= first["started"]
    assert "linear_top1" not in (out / "results.md").read_text()


def test_a_comparison_rerun_whose_main_backbone_fails_leaves_no_old_comparison(tmp_path, fail_tasks, tiny_suite_cfg):
    cfg = tiny_suite_cfg
    out = tmp_path / "out"
    run_comparison(cfg, "main", ["other"], out)
    assert (out / "comparison.md").is_file()
    fail_tasks()
    with pytest.raises(RuntimeError, match="task failed"):
        run_comparison(cfg, "main", ["other"], out, overwrite=True)
    assert not (out / "comparison.md").exists() and not (out / "comparison.json").exists()
