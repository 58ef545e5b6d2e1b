"""`geodino probe` into an --out holding an earlier probe's results is refused in one line unless --overwrite (a
second run replaced the first one's tables without a word); --overwrite keeps the feature cache, so a re-run of the
same probe reads its features instead of running the backbone; a folder holding only a feature cache is no reason
to refuse. From Python, `run_suite` (and `run_comparison`, `run_seeds`) make the same check with `overwrite=`: it
replaced an earlier run's results silently while the CLI refused."""

from __future__ import annotations

import json
import shutil

import pytest

import geodino.cli
from geodino.config import load_config
from geodino.errors import ConfigError, InputError
from geodino.eval import runner
from geodino.eval.compare import run_comparison
from geodino.eval.probe_output import check_probe_output, earlier_results
from geodino.eval.runner_seeds import run_seeds
from tests.eval.test_runner import _suite
from tests.eval.tiny_backbone import TinyBackbone
from tests.test_bad_inputs import one_line_exit_2


@pytest.fixture
def probed(tmp_path, monkeypatch):
    """A finished `geodino probe` of backbone `tiny` into tmp_path/p; returns (argv without --overwrite, out, the
    backbones loaded by spec: each spec loads one shared TinyBackbone, whose `calls` count its forward passes)."""
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    loaded: dict[str, TinyBackbone] = {}
    monkeypatch.setattr(
        runner, "load_probe_backbone", lambda spec, *a: loaded.setdefault(spec, TinyBackbone(spec=spec))
    )
    out = tmp_path / "p"
    argv = ["probe", "-c", str(_suite(tmp_path)), "--out", str(out), "progress=false"]
    assert geodino.cli.main([*argv, "-b", "tiny"]) == 0
    assert json.loads((out / "results.json").read_text())["backbone"] == "tiny"
    return argv, out, loaded


def test_a_second_probe_into_the_same_out_is_refused_before_any_backbone_loads(probed, capsys, tmp_path):
    argv, out, loaded = probed
    line = one_line_exit_2(capsys, tmp_path, *argv, "-b", "other")  # the folder is left as it was
    assert line == (
        f"geodino: error: --out {out} (out_dir= in Python) already holds an earlier probe's results (results.json, "
        "results.md); pass --overwrite (overwrite=True in Python) to replace them (its feature_cache/ is kept, so "
        "features computed before are read from it), or choose another --out folder"
    )
    assert set(loaded) == {"tiny"}  # `other` never loaded
    assert json.loads((out / "results.json").read_text())["backbone"] == "tiny"


def test_overwrite_replaces_the_results_and_rereads_the_kept_feature_cache(probed):
    argv, out, loaded = probed
    cached = sorted(p.name for p in (out / "feature_cache").iterdir())
    assert cached and loaded["tiny"].calls > 0
    calls = loaded["tiny"].calls
    assert geodino.cli.main([*argv, "-b", "tiny", "--overwrite"]) == 0  # the same probe again
    assert loaded["tiny"].calls == calls  # every feature came from the cache: no forward pass
    assert sorted(p.name for p in (out / "feature_cache").iterdir()) == cached
    assert geodino.cli.main([*argv, "-b", "other", "--overwrite"]) == 0  # another backbone replaces the results
    assert json.loads((out / "results.json").read_text())["backbone"] == "other"


def test_a_folder_holding_only_a_feature_cache_or_nothing_is_not_refused(probed):
    argv, out, _loaded = probed
    for name in ("results.json", "results.md"):
        (out / name).unlink()
    shutil.rmtree(out / "folder_knn_linear")  # as a run that failed in its first task leaves it: the cache only
    assert earlier_results(out) == [] and earlier_results(out / "absent") == []
    assert geodino.cli.main([*argv, "-b", "tiny"]) == 0
    assert (out / "results.json").is_file()


def test_comparison_and_seed_runs_count_as_earlier_results(tmp_path):
    for name in ("compare/1_other/results.json", "seed_0/results.json", "seed_1/comparison.json", "seeds.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / "compare" / "2_notes.txt").write_text("")  # not a run's results
    found = ["seeds.md", "compare/1_other/results.json", "seed_0/results.json", "seed_1/comparison.json"]
    assert earlier_results(tmp_path) == found
    with pytest.raises(InputError, match=r"earlier probe's results \(seeds\.md, compare/1_other/results\.json, seed_"):
        check_probe_output(tmp_path)
    check_probe_output(tmp_path, overwrite=True)  # replaced on request


def test_run_suite_refuses_an_earlier_probe_as_the_cli_does_and_overwrite_keeps_the_cache(probed, capsys, tmp_path):
    argv, out, loaded = probed
    cli_line = one_line_exit_2(capsys, tmp_path, *argv, "-b", "other")
    cfg = load_config(runner.SuiteConfig, argv[2], ["progress=false"])
    for refused in (
        lambda: runner.run_suite(cfg, "other", out),
        lambda: runner.run_suite(cfg, "other", out, overwrite="false"),  # text read as the CLI reads a flag
        lambda: run_comparison(cfg, "other", ["tiny"], out),
        lambda: run_seeds(cfg, "other", [], [0], out),
    ):
        with pytest.raises(InputError) as err:
            refused()
        assert f"geodino: error: {err.value}" == cli_line  # one check, one message for both entries
    assert set(loaded) == {"tiny"}  # `other` never loaded
    assert json.loads((out / "results.json").read_text())["backbone"] == "tiny"
    with pytest.raises(ConfigError, match="overwrite must be true or false"):
        runner.run_suite(cfg, "tiny", out, overwrite="maybe")
    cached = sorted(p.name for p in (out / "feature_cache").iterdir())
    calls = loaded["tiny"].calls
    runner.run_suite(cfg, "tiny", out, overwrite=True)  # the same probe again: every feature from the kept cache
    assert loaded["tiny"].calls == calls
    assert sorted(p.name for p in (out / "feature_cache").iterdir()) == cached
    rows = runner.run_suite(cfg, "other", out, overwrite=True)
    assert {r["backbone"] for r in rows} == {"other"}
    assert json.loads((out / "results.json").read_text())["backbone"] == "other"
