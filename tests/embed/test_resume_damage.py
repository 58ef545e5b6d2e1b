"""`embed --resume` on damaged work folders and outputs: stale progress records are never trusted without their
plan record and store, a damaged folder or finished output is one line naming it and what to do, and temporaries
of a killed conversion are removed by the next successful run (reliability audit)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from geodino.embed import embed_raster, sweep
from geodino.embed.pipeline import run_lines, work_dir_for
from geodino.errors import InputError
from geodino.io import writer_tag
from tests.embed.conftest import random_image, read_all, write_tif

# 4-px patches on a 160 x 96 input: 40 x 24 cells, three blocks of 16 rows, a tile row every 6 cells
OPTS = dict(tile=32, overlap=8, chunk=16, block_rows=16, progress=False)


def _killed_run(src, bb, out, monkeypatch, rows: int = 4) -> None:
    """Start a run and kill it (the sweep's fault seam) after `rows` tile rows: leaves `.OUT.partial/`."""

    def kill(n_blocks: int, n_rows: int) -> None:
        if n_rows >= rows:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(sweep, "_after_row", kill)
    with pytest.raises(KeyboardInterrupt):
        embed_raster(src, bb, out, **OPTS)
    monkeypatch.undo()
    assert (work_dir_for(out) / "plan.json").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def src(tmp_path):
    return write_tif(tmp_path / "in.tif", random_image(160, 96))


def test_done_records_without_a_plan_are_not_trusted(tmp_path, conv_bb, src, capsys):
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.tif", **OPTS))[0]
    out = tmp_path / "o.tif"
    work = work_dir_for(out)
    # what a writer still running after its folder was deleted leaves: chunks and done records, no plan/metadata
    (work / "store.zarr" / "embedding").mkdir(parents=True)
    (work / "store.zarr" / "embedding" / "0.0.0").write_bytes(b"\0" * 64)
    (work / "done").mkdir()
    for i in range(3):
        (work / "done" / f"{i}.done").write_text("300")
    capsys.readouterr()
    embed_raster(src, conv_bb, out, resume=True, **OPTS)
    got = read_all(out)[0]
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got, ref)
    # the valid share comes from what was written (all of it), not from the stale records (900 of 960)
    assert "valid cells (" not in capsys.readouterr().err


def test_valid_count_is_what_was_written(tmp_path, conv_bb, src, capsys):
    out = tmp_path / "o.tif"
    _killed_run(src, conv_bb, out, monkeypatch=pytest.MonkeyPatch(), rows=4)
    work = work_dir_for(out)
    done = sorted((work / "done").glob("*.done"))
    assert done
    done[0].write_text("7")  # a record that disagrees with its data
    capsys.readouterr()
    embed_raster(src, conv_bb, out, resume=True, **OPTS)
    assert not np.isnan(read_all(out)[0]).any()
    assert "valid cells (" not in capsys.readouterr().err


@pytest.mark.parametrize("rows, done", [(2, False), (4, True)], ids=["block-part-way", "block-done"])
def test_truncated_chunk_is_one_line(tmp_path, conv_bb, src, monkeypatch, rows, done):
    """A truncated chunk of a block written part-way (its chunks are rewritten on resume) or of a done block (only
    the conversion reads it again): one line naming the damaged work folder, and no output."""
    out = tmp_path / "o.tif"
    _killed_run(src, conv_bb, out, monkeypatch, rows=rows)
    work = work_dir_for(out)
    assert (work / "done" / "0.done").exists() == done
    store = work / "store.zarr" / "embedding"
    chunks = [store / "0.0.0"] if done else [p for p in store.iterdir() if not p.name.startswith(".")]
    assert chunks
    for p in chunks:
        p.write_bytes(p.read_bytes()[:20])
    hint = r"store\.zarr" if done else r"--overwrite"
    with pytest.raises(InputError, match=rf"work folder .*\.o\.tif\.partial is damaged .*{hint}"):
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
    assert not out.exists()


def test_work_folder_removed_mid_run_is_one_line(tmp_path, conv_bb, src, monkeypatch):
    out = tmp_path / "o.tif"
    work = work_dir_for(out)

    def remove(n_blocks: int, n_rows: int) -> None:
        if n_rows == 2:  # moved away at once (an rmtree races the writer), then deleted
            os.replace(work, tmp_path / "gone")
            shutil.rmtree(tmp_path / "gone", ignore_errors=True)

    monkeypatch.setattr(sweep, "_after_row", remove)
    with pytest.raises(InputError, match=r"work folder .* was removed while this run was writing"):
        embed_raster(src, conv_bb, out, **OPTS)
    assert not out.exists()
    assert not list(work.glob("done/*.done")), "the writer recreated progress records in a removed folder"


def test_partial_without_its_store_is_one_line(tmp_path, conv_bb, src, monkeypatch):
    out = tmp_path / "o.tif"
    _killed_run(src, conv_bb, out, monkeypatch)
    shutil.rmtree(work_dir_for(out) / "store.zarr")  # a kill between the renames of the conversion
    with pytest.raises(InputError, match=r"work folder .* is damaged \(store\.zarr is missing\)"):
        embed_raster(src, conv_bb, out, resume=True, **OPTS)


def test_resume_onto_a_truncated_cog_says_damaged(tmp_path, conv_bb, src, capsys):
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", **OPTS)
    with run_lines():  # the command's lines, without the bar
        embed_raster(src, conv_bb, out, resume=True, **OPTS)  # intact: nothing to resume
    assert "already complete" in capsys.readouterr().err
    with open(out, "r+b") as f:
        f.truncate(out.stat().st_size // 2)
    with pytest.raises(InputError, match=r"output .*o\.tif exists but is damaged .*--overwrite"):
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
    embed_raster(src, conv_bb, out, overwrite=True, **OPTS)
    embed_raster(src, conv_bb, out, resume=True, **OPTS)


def test_resume_onto_a_zarr_with_a_missing_chunk_says_damaged(tmp_path, conv_bb, src):
    out = embed_raster(src, conv_bb, tmp_path / "o.zarr", **OPTS)
    chunks = sorted(p for p in (out / "embedding").iterdir() if not p.name.startswith("."))
    chunks[-1].unlink()
    with pytest.raises(InputError, match=r"output .*o\.zarr exists but is damaged \(1 chunk file"):
        embed_raster(src, conv_bb, out, resume=True, **OPTS)


def test_resume_removes_stale_temporaries_of_dead_processes_only(tmp_path, conv_bb, src, monkeypatch):
    out = tmp_path / "o.tif"
    _killed_run(src, conv_bb, out, monkeypatch)
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tag = writer_tag()  # temporaries are named .STEM.tmp-TAG-PID.SUFFIX (geodino.io.temp_name)
        stale = [tmp_path / f".o.tmp-{tag}-{dead}.tif", tmp_path / f".o.tmp-{tag}-{dead}.tif.L0.tif"]
        stale += [tmp_path / f".o.tmp-{tag}-{dead}.tif.src.vrt"]
        kept = [tmp_path / f".o.tmp-{tag}-{live.pid}.tif.L0.tif", tmp_path / f".o.tmp-{tag}-{os.getpid()}.tif.L1.tif"]
        kept += [tmp_path / f".other.tmp-{tag}-{dead}.tif.L0.tif", tmp_path / f".o2.tmp-{tag}-{dead}.tif"]
        kept += [
            tmp_path / f".o.tmp-{dead}.tif.src.vrt",
            tmp_path / f".o.tmp-{dead}.tif",
            tmp_path / f".o.tmp-{dead}.tif.L0.tif",
        ]
        for p in stale + kept:
            p.write_bytes(b"x")
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
        assert out.exists()
        assert [p.name for p in stale if p.exists()] == []
        assert [p.name for p in kept if not p.exists()] == []
    finally:
        live.kill()
        live.wait()
