"""A distillation keeps its checkpoints in `checkpoints/` when the students are co-located (one process, or no
`students.ranks`/`share`) and in `<student>/checkpoints/` when each has its own ranks. Relaunched with the other
placement (a 2-process run with ranks resumed on one process, where students are always co-located, or the other
way), `train.resume=auto` first trained again from step 0 beside the earlier checkpoints without a word, then was
refused. It now resumes from the newest step every student has in the other placement, loading students, EMAs and
AdamW state by parameter name (`placement_resume`), with its log.csv made from the other placement's. A switched
run continues as a run started in the new placement from that state (iBOT masks depend on seed, step and rank), so
the test compares it with the co-located run itself, bit for bit. A folder holding both placements' checkpoints
resumes from the newer and says so in one log line."""

from __future__ import annotations

import csv
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch

from geodino.train.distill import distill
from geodino.train.distill.log_csv import merge_logs, split_log
from geodino.train.distill.placement_resume import Switch, other_placement, placement_step
from tests.helpers import same_tree
from tests.train.test_distill import _cfg

NAMES = ["tiny", "small"]  # test_distill's two students


def _ckpt(folder: Path, step: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"step_{step:08d}.ckpt"
    p.write_bytes(b"x")
    return p


def test_the_newest_step_every_student_has_wins(tmp_path) -> None:
    out = tmp_path / "run"
    assert other_placement(out, ["a", "b"], colocated=False) == (None, None)  # a new folder
    co = _ckpt(out / "checkpoints", 4)
    (out / "a").mkdir()  # an export folder: no checkpoints of its own
    assert other_placement(out, ["a", "b"], colocated=True) == (None, None)  # its own placement resumes
    assert other_placement(out, ["a", "b"], colocated=False) == (Switch(4, {"a": co, "b": co}, True), None)
    a2, _, b2 = (
        _ckpt(out / "a" / "checkpoints", 2),
        _ckpt(out / "a" / "checkpoints", 3),
        _ckpt(out / "b" / "checkpoints", 2),
    )
    assert placement_step(out, ["a", "b"], colocated=False) == (2, {"a": a2, "b": b2})  # b was cut short at 3
    switch, line = other_placement(out, ["a", "b"], colocated=False)  # both placements: the newer (4) wins
    assert switch == Switch(4, {"a": co, "b": co}, True)
    assert line == (
        f"output_dir {out} holds checkpoints of both placements of the students (co-located up to step 4, on "
        "their own ranks up to step 2): resuming from the newest, co-located at step 4"
    )
    switch, line = other_placement(out, ["a", "b"], colocated=True)
    assert switch is None and line is not None and line.endswith("resuming from the newest, co-located at step 4")
    shutil.rmtree(out / "checkpoints")
    assert other_placement(out, ["a", "b"], colocated=True) == (Switch(2, {"a": a2, "b": b2}, False), None)
    _ckpt(out / "checkpoints", 2)  # a tie: this launch's own placement
    switch, line = other_placement(out, ["a", "b"], colocated=False)
    assert switch is None and line is not None and line.endswith("on their own ranks at step 2")


def _split_checkpoint(src: Path, out: Path) -> None:
    """Student by student, what ranks of that student alone save at the step of co-located checkpoint `src`: its
    weights and EMA, and an AdamW over its parameters only (its groups, numbered from 0)."""
    obj = torch.load(src, map_location="cpu", weights_only=False)
    for name in NAMES:
        groups = [g for g in obj["optimizer"]["param_groups"] if g["names"][0].startswith(f"{name}.")]
        ids = [pid for g in groups for pid in g["params"]]
        renumber = {pid: i for i, pid in enumerate(ids)}
        optimizer = {
            "state": {renumber[pid]: s for pid, s in obj["optimizer"]["state"].items() if pid in renumber},
            "param_groups": [{**g, "params": [renumber[p] for p in g["params"]]} for g in groups],
        }
        mine = {k: {name: obj[k][name]} for k in ("students", "students_ema", "backbones")}
        folder = out / name / "checkpoints"
        folder.mkdir(parents=True)
        torch.save({**obj, **mine, "optimizer": optimizer}, folder / src.name)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def co_located(images, tmp_path_factory) -> Path:
    """A finished 2-step co-located distillation of two students (checkpoints of steps 1 and 2 kept)."""
    out = tmp_path_factory.mktemp("co") / "run"
    distill(_cfg(images, out))
    return out


def test_a_switch_to_co_located_continues_as_the_co_located_run(co_located, images, tmp_path, capsys, caplog) -> None:
    ref, out = co_located, tmp_path / "run"
    out.mkdir()
    for name in ("config.yaml", "data_paths.json", "teacher.heads.pth"):
        if (ref / name).exists():
            shutil.copy2(ref / name, out / name)
    _split_checkpoint(ref / "checkpoints" / "step_00000001.ckpt", out)  # students on their own ranks, at step 1
    for name in NAMES:  # and their logs, as such a run writes them (step 0)
        split_log(ref / "log.csv", name, NAMES, out / name / "log.csv", 1)
    capsys.readouterr()
    exports = distill(_cfg(images, out))  # one process: co-located
    where = out / "tiny" / "checkpoints" / "step_00000001.ckpt"
    assert f"geodino: resuming from {where} at step 1 of 2\n" in capsys.readouterr().err
    assert set(exports) == set(NAMES)
    got = torch.load(out / "checkpoints" / "step_00000002.ckpt", map_location="cpu", weights_only=False)
    want = torch.load(ref / "checkpoints" / "step_00000002.ckpt", map_location="cpu", weights_only=False)
    for key in ("students", "students_ema", "optimizer"):  # as the co-located run's own step 2, bit for bit
        assert same_tree(got[key], want[key]), key
    rows, ref_rows = _rows(out / "log.csv"), _rows(ref / "log.csv")
    assert list(rows[0]) == list(ref_rows[0])  # the co-located columns, in its order
    assert [r["step"] for r in rows] == ["0", "1"]
    assert rows[1] == ref_rows[1]  # step 1 trained again: the same row
    assert {k: v for k, v in rows[0].items() if k != "loss"} == {k: v for k, v in ref_rows[0].items() if k != "loss"}
    assert float(rows[0]["loss"]) == pytest.approx(float(ref_rows[0]["loss"]), rel=1e-6)  # the students' sum
    # re-run: both placements hold checkpoints now (co-located at 2, on their own ranks at 1); the newer wins
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="geodino.distill"):
        distill(_cfg(images, out))
    said = [r.getMessage() for r in caplog.records if "both placements" in r.getMessage()]
    assert said == [
        f"output_dir {out} holds checkpoints of both placements of the students (co-located up to step 2, on their "
        "own ranks up to step 1): resuming from the newest, co-located at step 2"
    ]
    line = f"geodino: resuming from {out / 'checkpoints' / 'step_00000002.ckpt'} at step 2 of 2: the run is already"
    assert line in capsys.readouterr().err


def test_split_and_merged_logs_are_what_each_placement_writes(co_located, tmp_path) -> None:
    ref_rows = _rows(co_located / "log.csv")
    logs = {n: tmp_path / n / "log.csv" for n in NAMES}
    for name, path in logs.items():
        split_log(co_located / "log.csv", name, NAMES, path, 2)
        rows = _rows(path)
        assert [r["step"] for r in rows] == ["0", "1"]
        assert all(
            c == "step" or c.startswith(f"{name}/") or c in ("loss", "lr", "momentum", "teacher_temp") for c in rows[0]
        )
        assert [r["loss"] for r in rows] == [r[f"{name}/loss"] for r in ref_rows]  # its own loss
    merge_logs(logs, tmp_path / "log.csv", 1)  # rows before step 1 only
    merged = _rows(tmp_path / "log.csv")
    assert len(merged) == 1 and list(merged[0]) == list(ref_rows[0])
    assert float(merged[0]["loss"]) == pytest.approx(float(ref_rows[0]["loss"]), rel=1e-6)


_WORKER = """
import json, os, sys
from geodino.config import load_config
from geodino.train.distill import DistillConfig, distill
for i, overrides in enumerate(json.loads(sys.argv[1])):  # run after run, in the same ranks and process group
    cfg = load_config(DistillConfig, None, overrides)
    sys.stdout.write(f"RESULT {i} {os.environ['RANK']} {sorted(distill(cfg))}\\n")
    sys.stdout.flush()
import torch.distributed as dist
dist.barrier()
dist.destroy_process_group()
sys.stdout.flush()
os._exit(0)  # gloo worker threads can abort the interpreter at exit (see geodino.train.commands)
"""

RANKS = (
    "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, ranks: [0, 1], overrides: {depth: 1, "
    "n_storage_tokens: 1}}, {name: small, arch: vit_small, drop_path_rate: 0.0, ranks: [1, 2], overrides: {depth: 1}}]"
)


def _torchrun(images: Path, outs: list[Path], tmp_path: Path) -> str:
    """Two gloo processes, each student on its own rank (torchrun), resuming each of `outs` in turn (one launch:
    Python and torch start once per rank); their stderr."""
    import json
    import os
    import subprocess
    import sys

    from tests.train.test_distill import _overrides

    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    cmd.append(json.dumps([_overrides(images, out, RANKS) for out in outs]))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = sorted(f"RESULT {i} {r}" for i in range(len(outs)) for r in ("0 ['tiny']", "1 ['small']"))
    assert sorted(re.findall(r"RESULT \d \d \[[^\]]*\]", proc.stdout)) == want
    return proc.stderr


@pytest.mark.slow
def test_a_switch_to_own_ranks_continues_as_a_run_on_own_ranks(co_located, images, tmp_path) -> None:
    """Co-located checkpoints of step 1 relaunched with each student on its own rank (2 processes) equal the same
    state saved as that placement saves it and resumed there (`_split_checkpoint`), bit for bit at step 2."""
    from tests.train.conftest import killed_copy

    switched = killed_copy(co_located, tmp_path / "switched")  # co-located, killed after step 1
    native = killed_copy(co_located, tmp_path / "native")
    _split_checkpoint(native / "checkpoints" / "step_00000001.ckpt", native)
    shutil.rmtree(native / "checkpoints")
    for name in NAMES:
        split_log(co_located / "log.csv", name, NAMES, native / name / "log.csv", 1)
    err = _torchrun(images, [switched, native], tmp_path)  # the switch first, in fresh processes
    assert f"resuming from {switched / 'checkpoints' / 'step_00000001.ckpt'} at step 1 of 2" in err
    assert f"resuming from {native / 'tiny' / 'checkpoints' / 'step_00000001.ckpt'} at step 1 of 2" in err
    for name in NAMES:
        path = Path(name) / "checkpoints" / "step_00000002.ckpt"
        got = torch.load(switched / path, map_location="cpu", weights_only=False)
        want = torch.load(native / path, map_location="cpu", weights_only=False)
        for key in ("students", "students_ema", "optimizer"):
            assert same_tree(got[key], want[key]), (name, key)
        assert _rows(switched / name / "log.csv") == _rows(native / name / "log.csv")
        assert [r["step"] for r in _rows(switched / name / "log.csv")] == ["0", "1"]


def test_a_finished_run_relaunched_with_the_other_placement_writes_nothing(co_located, images, tmp_path) -> None:
    """Students that finished on their own ranks, re-run on one process: complete already, their exports (written
    after their own checkpoints) kept, no co-located log or checkpoint made."""
    import os

    out = tmp_path / "run"
    shutil.copytree(co_located, out, ignore=shutil.ignore_patterns("checkpoints", "log.csv", "curves.png"))
    src = co_located / "checkpoints" / "step_00000002.ckpt"
    _split_checkpoint(src, out)
    for name in NAMES:  # as written by that run: before its exports
        t = src.stat().st_mtime
        os.utime(out / name / "checkpoints" / src.name, (t, t))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    exports = distill(_cfg(images, out))
    assert exports == {n: out / n / f"{n}.pth" for n in NAMES}
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before
