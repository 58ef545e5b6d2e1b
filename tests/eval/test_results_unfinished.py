"""A probe run that has not finished all its tasks (still going, an error, SIGKILL) says so in results.json
(`complete: false`, `pending`) and at the top of results.md; a finished run is `complete` with nothing pending."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from geodino.config import load_config
from geodino.eval import runner
from geodino.eval.runner import SuiteConfig, read_results, run_suite
from tests.eval.class_folder import class_folder
from tests.eval.tiny_backbone import TinyBackbone

SUITE = """
name: three_tasks
tasks:
{tasks}
"""
TASK = """  {name}:
    type: classification
    data: {{name: image_folder, root: {root}, val_fraction: 0.25, test_fraction: 0.25}}
    features: {{batch_size: 8}}
    knn: {{ks: [1]}}
    linear: {{enabled: false}}
"""


def _cfg(tmp_path):
    class_folder(tmp_path / "imgs")
    tasks = "".join(TASK.format(name=n, root=tmp_path / "imgs") for n in ("first", "second", "third"))
    (tmp_path / "suite.yaml").write_text(SUITE.format(tasks=tasks))
    return load_config(SuiteConfig, tmp_path / "suite.yaml", ["progress=false"])


def _stop_at_second(monkeypatch, stop):
    monkeypatch.setattr(runner, "load_probe_backbone", lambda *a: TinyBackbone(spec="tiny"))
    call = runner._call_task

    def task(fn, backbone, tcfg, out, data):
        if out.name == "second":
            stop()
        return call(fn, backbone, tcfg, out, data)

    monkeypatch.setattr(runner, "_call_task", task)


def _check_unfinished(out):
    res = read_results(out)
    assert res["complete"] is False and res["pending"] == ["second", "third"]  # before: no such keys
    assert {r["task"] for r in res["rows"]} == {"first"}
    md = (out / "results.md").read_text()
    assert "**Unfinished run**: 2 tasks of this run (second, third) had not finished" in md
    assert "| first |" in md and "| second |" not in md


def test_a_failed_run_marks_its_table_unfinished_and_a_rerun_completes_it(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    out = tmp_path / "out"

    def fail():
        raise RuntimeError("task failed")

    _stop_at_second(monkeypatch, fail)
    with pytest.raises(RuntimeError, match="task failed"):
        run_suite(cfg, "tiny", out)
    _check_unfinished(out)
    monkeypatch.undo()
    monkeypatch.setattr(runner, "load_probe_backbone", lambda *a: TinyBackbone(spec="tiny"))
    run_suite(_cfg(tmp_path), "tiny", out, overwrite=True)  # as `geodino probe --overwrite` reruns it
    res = read_results(out)
    assert res["complete"] is True and res["pending"] == []
    assert [r["task"] for r in res["rows"] if r["metric"] == "knn_top1"] == ["first", "second", "third"]
    assert "Unfinished" not in (out / "results.md").read_text()


CHILD = """
import os, signal, sys
from pathlib import Path
from geodino.config import load_config
from geodino.eval import runner
from tests.eval.tiny_backbone import TinyBackbone

runner.load_probe_backbone = lambda *a: TinyBackbone(spec="tiny")
call = runner._call_task

def task(fn, backbone, tcfg, out, data):
    if out.name == "second":
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-suite, after the first task's files were written
    return call(fn, backbone, tcfg, out, data)

runner._call_task = task
cfg = load_config(runner.SuiteConfig, Path(sys.argv[1]), ["progress=false"])
runner.run_suite(cfg, "tiny", Path(sys.argv[2]))
"""


def test_a_sigkilled_run_leaves_an_unfinished_table(tmp_path):
    _cfg(tmp_path)
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", CHILD, str(tmp_path / "suite.yaml"), str(out)]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    _check_unfinished(out)
    assert json.loads((out / "results.json").read_text())["configs"].keys() == {"first", "second", "third"}
