"""`data_paths.json` (what each data path names, so that a moved data folder resumes) was written at every start by
listing every data file (~0.1 ms a file: minutes per start of a run over millions of files), even when the resume
names the paths exactly as before. A resume whose paths are spelled exactly as the run folder's config.yaml (the
start that wrote the stamp) spells them now keeps the stamp unlisted; another spelling, a moved folder, a fresh
start, a run folder without config.yaml or a stamp that does not fit the sources list as before."""

from __future__ import annotations

import json
import shutil

import pytest

import geodino.train.resume_paths as rp
from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import write_config


def _config(*paths: str) -> dict:
    return {"data": {"sources": [{"type": "raster", "paths": list(paths)}, {"type": "raster"}]}}


def test_a_resume_with_the_same_paths_keeps_the_stamp_unlisted(tmp_path, tiny_data, listings) -> None:
    out = tmp_path / "run"
    out.mkdir()
    assert rp.write_data_stamp(_config(str(tiny_data)), out)
    stamp = out / rp.STAMP
    before, mtime = stamp.read_bytes(), stamp.stat().st_mtime_ns
    listings.clear()
    assert not rp.write_data_stamp(_config(str(tiny_data)), out, unchanged_from=_config(str(tiny_data)))
    assert listings == [] and stamp.read_bytes() == before and stamp.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("case", ["spelling", "fresh", "other_sources", "other_path"])
def test_anything_else_lists_again(tmp_path, tiny_data, listings, case) -> None:
    out = tmp_path / "run"
    out.mkdir()
    rp.write_data_stamp(_config(str(tiny_data)), out)
    if case == "other_sources":  # the stamp records another number of sources
        (out / rp.STAMP).write_text(json.dumps({"data": [[rp.listing_digest(str(tiny_data))]]}))
    moved = shutil.copytree(tiny_data, tmp_path / "moved")
    now = {"spelling": f"{tiny_data}/", "other_path": str(moved)}.get(case, str(tiny_data))
    listings.clear()
    before = None if case == "fresh" else _config(str(tiny_data))
    assert rp.write_data_stamp(_config(now), out, unchanged_from=before)
    assert listings == [now]
    assert json.loads((out / rp.STAMP).read_text()) == {"data": [[rp.listing_digest(str(tiny_data))], []]}


def test_pretrain_resume_lists_no_data_file(tmp_path, tiny_data, listings) -> None:
    """A real resume (checkpoint of step 1 of 2) with the same config: the stamp is kept as the first start wrote
    it, and nothing is listed; with the data folder moved, the resume lists the new path and records it."""
    data = shutil.copytree(tiny_data, tmp_path / "data")
    path = write_config(tmp_path / "c.yaml", tmp_path / "run", data)
    over = ["checkpoint.export_at_end=false", "checkpoint.keep_last=3"]
    pretrain(load_config(PretrainConfig, path, over))
    stamp = tmp_path / "run" / rp.STAMP
    before = stamp.read_bytes()
    assert listings == [str(data)]
    for p in (tmp_path / "run" / "checkpoints").iterdir():
        if "00000002" in p.name or p.name == "last.ckpt":
            p.unlink()
    listings.clear()
    pretrain(load_config(PretrainConfig, path, over))
    assert (tmp_path / "run" / "checkpoints" / "step_00000002.ckpt").is_file()  # it trained step 2
    assert listings == [] and stamp.read_bytes() == before
    moved = shutil.move(data, tmp_path / "moved")
    for p in (tmp_path / "run" / "checkpoints").iterdir():
        if "00000002" in p.name or p.name == "last.ckpt":
            p.unlink()
    listings.clear()
    pretrain(load_config(PretrainConfig, write_config(tmp_path / "m.yaml", tmp_path / "run", moved), over))
    assert str(moved) in listings and (tmp_path / "run" / "checkpoints" / "step_00000002.ckpt").is_file()
    assert stamp.read_bytes() == before  # the same files: the same digest
