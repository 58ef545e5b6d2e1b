"""Paired significance for `geodino probe --compare`: per-image predictions (predictions.csv) of the
classification probe, and the exact McNemar p of each top-1 Δ on the test images both backbones scored.

Before: the only significance cue was the dagger (overlapping Wilson intervals), a conservative screen; 0.70 vs
0.75 on 400 images overlaps although the 20 differing images all favour one backbone (exact p = 1.9e-6)."""

from __future__ import annotations

import csv
import json
import math

import pytest

from geodino.eval.compare import comparison_markdown, comparison_rows
from geodino.eval.results import wilson_interval


def test_mcnemar_p_matches_scipy_binomtest_and_hand_computed_cases():
    from scipy.stats import binomtest

    from geodino.eval.classification_predictions import mcnemar_p

    assert mcnemar_p(0, 20) == pytest.approx(2 * 0.5**20, rel=1e-12)  # 1.9e-6
    assert mcnemar_p(1, 4) == pytest.approx(2 * (1 + 5) / 32)  # P[X <= 1] = (C(5,0) + C(5,1)) / 2^5; p = 0.375
    assert mcnemar_p(3, 3) == 1.0 and mcnemar_p(0, 0) == 1.0
    for b in range(0, 25, 3):
        for c in range(0, 25, 4):
            if b + c:
                assert mcnemar_p(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-15)
    assert mcnemar_p(400, 480) == pytest.approx(binomtest(400, 880, 0.5).pvalue, rel=1e-9)


def _write(folder, task, truth, preds):
    (folder / task).mkdir(parents=True)
    with open(folder / task / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "true", "knn"])
        for i, (t, p) in enumerate(zip(truth, preds, strict=True)):
            w.writerow([f"img_{i}.tif", t, p])


def _runs(n, acc_a, acc_b):
    rows = []
    for acc in (acc_a, acc_b):
        rows.append([{"task": "t", "metric": "knn_top1", "value": acc, "ci95": list(wilson_interval(acc, n))}])
    return [("a", rows[0]), ("b", rows[1])]


def test_an_overlapping_pair_gets_its_paired_p_in_the_table(tmp_path):
    from geodino.eval.classification_predictions import add_paired_tests

    n = 400
    truth = ["x"] * n
    a = ["x"] * 280 + ["y"] * 120  # 0.70
    b = ["x"] * 300 + ["y"] * 100  # 0.75: the 20 images a gets wrong and b right, none the other way
    _write(tmp_path / "a", "t", truth, a)
    _write(tmp_path / "b", "t", truth, b)
    runs = _runs(n, 0.70, 0.75)
    rows = comparison_rows(runs)
    add_paired_tests(rows, ["a", "b"], [tmp_path / "a", tmp_path / "b"])
    assert rows[0]["mcnemar"]["b"] == {"n": 400, "b": 0, "c": 20, "p": pytest.approx(2 * 0.5**20)}
    md = comparison_markdown(runs, "s", rows=rows)
    assert "| t | knn_top1 | 0.7000 | 0.7500 | +0.0500 † p=1.9e-06 |" in md
    assert "p: exact two-sided McNemar test" in md and "read p where given" in md


def test_rows_are_matched_by_image_id_not_by_order(tmp_path):
    from geodino.eval.classification_predictions import paired_test

    truth = ["x", "y", "x", "y"]
    _write(tmp_path / "a", "t", truth, ["x", "x", "y", "y"])  # right on 0 and 3
    (tmp_path / "b" / "t").mkdir(parents=True)
    with open(tmp_path / "b" / "t" / "predictions.csv", "w") as f:  # same images, other order: right on 1, 3
        f.write("id,true,knn\nimg_3.tif,y,y\nimg_2.tif,x,y\nimg_1.tif,y,y\nimg_0.tif,x,y\n")
    r = paired_test(tmp_path / "a" / "t", tmp_path / "b" / "t", "knn")
    assert (r["n"], r["b"], r["c"]) == (4, 1, 1) and r["p"] == 1.0


def test_different_test_sets_get_no_p_and_a_note(tmp_path):
    from geodino.eval.classification_predictions import add_paired_tests

    _write(tmp_path / "a", "t", ["x"] * 4, ["x"] * 4)
    _write(tmp_path / "b", "t", ["x"] * 5, ["x"] * 5)
    runs = _runs(4, 1.0, 1.0)
    rows = comparison_rows(runs)
    add_paired_tests(rows, ["a", "b"], [tmp_path / "a", tmp_path / "b"])
    assert "p" not in rows[0]["mcnemar"]["b"] and "different test images" in rows[0]["mcnemar"]["b"]["skipped"]
    md = comparison_markdown(runs, "s", rows=rows)
    assert "| +0.0000 † |" in md
    assert "- no p for t knn_top1, `b`: the two runs scored different test images (4 vs 5, 1 not in both)" in md


def test_cli_comparison_writes_per_image_predictions_and_the_p_of_each_top1_row(tmp_path, capsys):
    from geodino.cli import main
    from geodino.eval.classification_predictions import mcnemar_p

    from .test_compare import _chips

    data = _chips(tmp_path / "chips")
    common = [f"tasks.demo_landcover.data.root={data}", "tasks.demo_landcover.data.bands=[]", "progress=false"]
    common += ["tasks.demo_landcover.data.scale=0.00392156862745098", "tasks.demo_landcover.knn.ks=[3]"]
    common += ["tasks.demo_landcover.features.layers=last"]  # the 1-block ViT: no short-backbone warning
    out = tmp_path / "out"
    argv = ["probe", "-c", "configs/eval/demo.yaml", "-b", "arch:vit_tiny?depth=1&patch_size=8&seed=0"]
    assert main([*argv, "--compare", "baseline:colour?patch_size=8", "--out", str(out), *common]) == 0
    folders = [out / "demo_landcover", out / "compare" / "1_baseline_colour_patch_size_8" / "demo_landcover"]
    preds = []
    for f in folders:
        with open(f / "predictions.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == json.loads((f / "classification.json").read_text())["n_eval"]
        assert {r["true"] for r in rows} <= {"bright", "dark"} and all(r["id"].endswith(".png") for r in rows)
        preds.append({r.pop("id"): r for r in rows})
    table = json.loads((out / "comparison.json").read_text())
    results = json.loads((out / "results.json").read_text())["rows"]
    for head in ("knn", "linear"):
        a, o = preds
        acc = sum(r[head] == r["true"] for r in a.values()) / len(a)
        assert acc == pytest.approx(next(r["value"] for r in results if r["metric"] == f"{head}_top1"))
        b = sum(a[i][head] == a[i]["true"] and o[i][head] != o[i]["true"] for i in a)
        c = sum(a[i][head] != a[i]["true"] and o[i][head] == o[i]["true"] for i in a)
        row = next(r for r in table["rows"] if r["metric"] == f"{head}_top1")
        got = row["mcnemar"][table["backbones"][1]]
        assert (got["n"], got["b"], got["c"]) == (len(a), b, c)
        assert got["p"] == pytest.approx(mcnemar_p(b, c)) and not math.isnan(got["p"])
    assert not any("mcnemar" in r for r in table["rows"] if not r["metric"].endswith("_top1"))
    # the table in words, printed with it (comparison.md's last lines): one sentence per top-1 row with its p
    from geodino.eval.classification_predictions import format_p

    printed = [line for line in capsys.readouterr().out.splitlines() if " on demo_landcover/" in line]
    assert len(printed) == 2, printed
    for head, line in zip(("knn", "linear"), printed, strict=True):
        row = next(r for r in table["rows"] if r["metric"] == f"{head}_top1")
        a, o = (row["values"][s] for s in table["backbones"])
        p = row["mcnemar"][table["backbones"][1]]["p"]
        meaning = "unlikely to be test-set noise" if p < 0.05 else "a difference is not shown on these test chips"
        assert line.startswith("- ") and f"/{head}_top1: {a:.3f} vs {o:.3f} ({a - o:+.3f}; McNemar p = " in line
        assert line.endswith(f"p = {format_p(p)}: {meaning})")
