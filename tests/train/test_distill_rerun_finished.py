"""Re-running a finished distillation (its newest checkpoint is at train.max_steps: nothing trains) rewrote
config.yaml, schedules.png and curves.png, exported every student again (a new STAC item time, new file times) and
said only 'resuming from ... at step 2 of 2'. It now leaves every file of the run folder as it was, bytes and
modification times, says the run is complete, and writes an export again only where it would differ: one that was
deleted, or one a changed `train.export` makes another."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from geodino.train.distill import distill
from tests.train.conftest import ONE_STUDENT
from tests.train.test_distill import _cfg


def _files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }


def test_a_rerun_of_a_finished_run_leaves_its_folder_as_it_was(finished_distill, images, capsys) -> None:
    out = finished_distill  # in place: config.yaml records output_dir
    before = _files(out)
    assert {"config.yaml", "schedules.png", "data_paths.json", "curves.png", "tiny/tiny.pth"} <= set(before)
    capsys.readouterr()
    exports = distill(_cfg(images, out, ONE_STUDENT))
    assert exports == {"tiny": out / "tiny" / "tiny.pth"}
    after = _files(out)
    assert after.keys() == before.keys()
    for name, (data, mtime) in before.items():
        assert after[name][0] == data, name
        assert after[name][1] == mtime, name  # not written again with the same bytes
    ckpt = out / "checkpoints" / "step_00000002.ckpt"
    line = f"geodino: resuming from {ckpt} at step 2 of 2: the run is already complete, nothing to train\n"
    assert line in capsys.readouterr().err


def test_a_deleted_export_is_written_again_the_same(finished_distill, images, tmp_path) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished_distill, out)
    weights = (out / "tiny" / "tiny.safetensors").read_bytes()
    (out / "tiny" / "tiny.safetensors").unlink()
    distill(_cfg(images, out, ONE_STUDENT))
    assert (out / "tiny" / "tiny.safetensors").read_bytes() == weights
    assert not list(out.glob(".*export-check*"))  # the staging folder is gone


def test_another_train_export_is_written(finished_distill, images, tmp_path) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished_distill, out)
    distill(_cfg(images, out, ONE_STUDENT, "train.export=student"))
    ck = torch.load(out / "checkpoints" / "step_00000002.ckpt", map_location="cpu", weights_only=True)
    raw = {k[len("backbone.") :]: v for k, v in ck["students"]["tiny"].items() if k.startswith("backbone.")}
    exported = torch.load(out / "tiny" / "tiny.pth", map_location="cpu", weights_only=True)
    assert all(torch.equal(exported[k], raw[k]) for k in exported)
    item = json.loads((out / "tiny" / "tiny.stac.json").read_text())
    assert item["properties"]["geodino:network"] == "student tiny (student)"
