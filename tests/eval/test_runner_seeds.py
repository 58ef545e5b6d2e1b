"""`geodino probe --seeds`: one run per seed into OUT/seed_<s>/, then seeds.md/seeds.json with the mean and sample
standard deviation per task, metric and backbone (and the paired Δ per comparison), checked against NumPy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import geodino.cli
from geodino.errors import ConfigError
from geodino.eval import runner
from geodino.eval.runner_seeds import aggregate, mean_std, parse_seeds, seeds_markdown
from tests.eval.test_runner import _suite
from tests.eval.tiny_backbone import TinyBackbone


def test_mean_and_sample_std_match_numpy_and_skip_missing_values():
    vals = [0.71, 0.69, None, 0.74, math.nan]
    m, sd, n = mean_std(vals)
    ref = np.array([0.71, 0.69, 0.74])
    assert n == 3 and m == pytest.approx(ref.mean(), abs=1e-15) and sd == pytest.approx(ref.std(ddof=1), abs=1e-15)
    m, sd, n = mean_std([0.5])
    assert (m, n) == (0.5, 1) and math.isnan(sd)
    assert mean_std([None])[2] == 0


def test_aggregate_pairs_the_comparison_seed_by_seed():
    def rows(**metrics):
        return [{"task": "t", "metric": k, "value": v} for k, v in metrics.items()]

    per_seed = {
        0: [("main", rows(knn_top1=0.70, MAE=4.0)), ("other", rows(knn_top1=0.80, MAE=3.5))],
        1: [("main", rows(knn_top1=0.60, MAE=4.4)), ("other", rows(knn_top1=0.75, MAE=3.6))],
        2: [("main", rows(knn_top1=0.65, MAE=4.2)), ("other", rows(knn_top1=0.70, MAE=None))],
    }
    out = {r["metric"]: r for r in aggregate(per_seed)}
    top1 = out["knn_top1"]
    assert top1["backbones"]["main"]["values"] == [0.70, 0.60, 0.65]
    assert top1["backbones"]["other"]["std"] == pytest.approx(np.std([0.80, 0.75, 0.70], ddof=1))
    d = np.array([0.10, 0.15, 0.05])
    assert top1["delta"]["other"]["mean"] == pytest.approx(d.mean()) and top1["delta"]["other"]["std"] == pytest.approx(
        d.std(ddof=1)
    )
    mae = out["MAE"]
    assert mae["better"] == "lower" and mae["delta"]["other"]["n"] == 2  # seed 2's MAE is missing: not paired
    assert mae["delta"]["other"]["mean"] == pytest.approx(np.mean([-0.5, -0.8]))
    md = seeds_markdown(aggregate(per_seed), "s", [0, 1, 2], ["main", "other"])
    assert f"| t | knn_top1 | 0.6500 ± {np.std([0.7, 0.6, 0.65], ddof=1):.4f} |" in md
    assert "except for MAE (errors: lower is better" in md
    assert "- t MAE `other`: 2 of 3" in md


@pytest.mark.parametrize(
    ("text", "message"),
    [("0", "names 1 seed; give two or more"), ("0,a", "must be integers"), ("1,1", "names a seed twice")],
)
def test_bad_seed_lists_are_one_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_seeds(text)
    assert parse_seeds(" 3, 1 ,2") == [3, 1, 2]


def test_cli_seeds_with_compare_writes_the_table_of_its_runs(tmp_path, monkeypatch, capsys, spec_backbones):
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    suite, out = _suite(tmp_path), tmp_path / "out"
    argv = ["probe", "-c", str(suite), "-b", "main", "--compare", "other", "--seeds", "0,5", "--out", str(out)]
    assert geodino.cli.main([*argv, "progress=false"]) == 0
    table = json.loads((out / "seeds.json").read_text())
    assert list((out / "feature_cache").glob("*.safetensors")) and not list(out.glob("seed_*/feature_cache"))
    assert table["seeds"] == [0, 5] and table["backbones"] == ["main", "other"]
    md = (out / "seeds.md").read_text()
    for row in (r for r in table["rows"] if r["kind"] == "score"):
        vals = {}
        for spec, sub in (("main", ""), ("other", "compare/1_other/")):
            res = [json.loads((out / f"seed_{s}" / sub / "results.json").read_text()) for s in (0, 5)]
            assert [r["seed"] for r in res] == [0, 5] and {r["backbone"] for r in res} == {spec}
            vals[spec] = np.array([next(x["value"] for x in r["rows"] if x["metric"] == row["metric"]) for r in res])
            cell = row["backbones"][spec]
            assert cell["mean"] == pytest.approx(vals[spec].mean()) and cell["std"] == pytest.approx(
                vals[spec].std(ddof=1)
            )
        d = vals["other"] - vals["main"]
        assert row["delta"]["other"]["mean"] == pytest.approx(d.mean())
        assert f"| {row['task']} | {row['metric']} | {vals['main'].mean():.4f} ± {vals['main'].std(ddof=1):.4f} |" in md
    capsys.readouterr()
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", "main", "--seeds", "0,1", "--out", str(out), "seed=3"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "geodino: error: --seeds 0,1 and seed=3 both set the seed; give one of them"
    )


def test_run_seeds_takes_the_suite_mapping_from_python(tmp_path, monkeypatch):
    import yaml

    from geodino.eval.runner_seeds import run_seeds

    monkeypatch.setattr(runner, "load_probe_backbone", lambda spec, *a: TinyBackbone(spec=spec))
    mapping = yaml.safe_load(_suite(tmp_path).read_text()) | {"progress": False}
    md = run_seeds(mapping, "tiny", [], [1, 2], tmp_path / "out")  # before: 'dict' object has no attribute 'seed'
    table = json.loads((tmp_path / "out" / "seeds.json").read_text())
    assert md.is_file() and table["backbones"] == ["tiny"] and table["rows"]
    assert [runner.read_results(tmp_path / "out" / f"seed_{s}")["seed"] for s in (1, 2)] == [1, 2]


def test_seeds_table_says_why_a_comparison_backbone_skipped_a_task(tmp_path, monkeypatch):
    """A task a comparison backbone cannot run reads "-" in seeds.md; the reason from its runs' results.json is
    carried into a note under the table (each seed's comparison.md has it; seeds.md had only the "-")."""
    import geodino.eval.compare
    from geodino.eval.compare import COMPARE_DIR, slug
    from geodino.eval.runner_seeds import run_seeds

    why = "needs 4 blocks; the backbone has 2 blocks"

    def fake_comparison(cfg, spec, compare, folder, overwrite):
        for sub, value, skipped in (
            ("", 0.7 + cfg.seed / 100, {}),
            (f"{COMPARE_DIR}/{slug('other', 1)}", None, {"seg": why}),
        ):
            f = folder / sub
            f.mkdir(parents=True, exist_ok=True)
            rows = [{"task": "cls", "metric": "knn_top1", "value": 0.6}]
            if value is not None:
                rows.append({"task": "seg", "metric": "mIoU", "value": value})
            (f / "results.json").write_text(json.dumps({"rows": rows, "skipped": skipped}))

    monkeypatch.setattr(geodino.eval.compare, "run_comparison", fake_comparison)
    mapping = {"name": "s", "backbone": "main", "tasks": {}, "progress": False}
    monkeypatch.setattr("geodino.eval.runner.suite_config", lambda cfg: _Cfg())
    md = run_seeds(mapping, "main", ["other"], [0, 1], tmp_path / "out").read_text()
    assert "| seg | mIoU | 0.7050 ± 0.0071 | - | - |" in md
    assert f"- `other` skipped seg: {why}" in md
    assert json.loads((tmp_path / "out" / "seeds.json").read_text())["skipped"] == {"other": {"seg": why}}


class _Cfg:
    name = "s"
    backbone = "main"
    seed = 0
    cache_dir = ""
