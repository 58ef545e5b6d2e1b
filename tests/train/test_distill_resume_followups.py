"""Distillation resume follow-ups of pretraining's: (1) a changed `data.sources[i].index_cache` (only where the
raster index is kept) was refused on resume as a data change; (2) every start listed every data file for
data_paths.json, a resume with the paths spelled as the run folder's config.yaml now keeps the stamp unlisted (a
moved folder still lists and resumes); (3) a finished re-run killed while it compared an export left a hidden
`.NAME.export-check-*` folder that nothing removed: it is now a `temp_name` the next start sweeps when its writer
is gone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from geodino.config import to_dict
from geodino.errors import CheckpointError
from geodino.io_temps import temp_name
from geodino.train.distill import distill
from geodino.train.distill.export import check_resume_config
from tests.train.conftest import ONE_STUDENT, dead_pid, killed_copy
from tests.train.test_distill import _cfg


def _check(tmp_path: Path, images: Path, saved: tuple[str, ...], mine: tuple[str, ...]) -> None:
    ckpt = tmp_path / "step_00000001.ckpt"
    torch.save(
        {"format": "geodino-distill", "config": to_dict(_cfg(images, tmp_path / "run", ONE_STUDENT, *saved))}, ckpt
    )
    check_resume_config(ckpt, to_dict(_cfg(images, tmp_path / "run", ONE_STUDENT, *mine)))


@pytest.mark.parametrize(
    "saved, mine",
    [
        ((), ("data.sources[0].index_cache=/tmp/idx.json",)),  # cache added
        (("data.sources[0].index_cache=/a/idx.json",), ("data.sources[0].index_cache=/b/idx.json",)),  # moved
        (("data.sources[0].index_cache=/a/idx.json",), ()),  # dropped
    ],
)
def test_a_changed_index_cache_resumes(images, tmp_path, saved, mine) -> None:
    _check(tmp_path, images, saved, mine)


def test_a_changed_tile_size_is_still_refused(images, tmp_path) -> None:
    with pytest.raises(CheckpointError, match=r"data\.sources\[0\]\.tile_size"):
        _check(tmp_path, images, (), ("data.sources[0].tile_size=40",))


def test_an_unchanged_resume_does_not_list_the_data(copied_distill, tmp_path, listings) -> None:
    data, run = copied_distill
    out = killed_copy(run, tmp_path / "run")
    stamp = (out / "data_paths.json").read_bytes()
    listings.clear()
    distill(_cfg(data, out, ONE_STUDENT))
    assert (out / "checkpoints" / "step_00000002.ckpt").is_file()  # it resumed and trained step 2
    assert listings == []  # no data file listed: the stamp is the earlier start's
    assert (out / "data_paths.json").read_bytes() == stamp


def test_a_moved_data_folder_still_lists_and_resumes(copied_distill, tmp_path, listings) -> None:
    data, run = copied_distill
    out = killed_copy(run, tmp_path / "run")
    moved = shutil.copytree(data, tmp_path / "new" / "imgs")
    listings.clear()
    distill(_cfg(moved, out, ONE_STUDENT))
    assert (out / "checkpoints" / "step_00000002.ckpt").is_file()
    assert str(moved) in listings  # the new path was listed (to match it, and for the new stamp)
    assert str(moved) in (out / "config.yaml").read_text()


def test_a_killed_export_check_is_swept_at_the_next_start(copied_distill, tmp_path) -> None:
    data, run = copied_distill
    out = killed_copy(run, tmp_path / "run")
    target = out / "tiny.export-check"  # what earlier versions staged as .tiny.tmp-TAG-PID.export-check
    name = temp_name(target).name.replace(f"-{os.getpid()}.", f"-{dead_pid()}.")
    killed = out / name
    (killed / "tiny").mkdir(parents=True)
    (killed / "tiny" / "tiny.pth").write_bytes(b"x" * 100)
    live = temp_name(target)  # this process's: a live writer, kept
    live.mkdir()
    distill(_cfg(data, out, ONE_STUDENT))
    assert not killed.exists()
    assert live.is_dir()
    shutil.rmtree(live)
    # a finished re-run's own check leaves nothing behind
    distill(_cfg(data, out, ONE_STUDENT))
    assert not [p.name for p in out.iterdir() if "export-check" in p.name]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
