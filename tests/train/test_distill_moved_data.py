"""A distillation whose data folder was moved (the old path gone) could not be resumed: its resume check called
`same_paths_as_saved` without the run folder, and the distill start never wrote `data_paths.json`, so the new path
was compared as a string and refused. The start now writes the stamp (as pretraining does) and the check reads it:
a moved folder with the same files resumes bit-identically; one with other files is refused in one line that says
how a moved folder resumes, and the run folder is left as it was."""

from __future__ import annotations

import shutil

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.train.distill import distill
from geodino.train.resume_paths import STAMP, listing_digest
from tests.train.conftest import ONE_STUDENT, killed_copy
from tests.train.test_distill import _cfg


def test_the_start_records_what_each_data_path_names(copied_distill) -> None:
    import json

    data, run = copied_distill
    assert json.loads((run / STAMP).read_text()) == {"data": [[listing_digest(str(data))]]}


def test_a_moved_data_folder_resumes_bit_identically(copied_distill, tmp_path) -> None:
    data, run = copied_distill
    out = killed_copy(run, tmp_path / "run")
    moved = shutil.copytree(data, tmp_path / "new" / "imgs")  # the same files under another path
    distill(_cfg(moved, out, ONE_STUDENT))
    a, b = (torch.load(d / "checkpoints" / "step_00000002.ckpt", weights_only=True) for d in (run, out))
    for part in ("students", "students_ema"):
        for k, v in a[part]["tiny"].items():
            assert torch.equal(b[part]["tiny"][k], v), (part, k)


def test_a_folder_with_other_files_is_refused_in_one_line(copied_distill, tmp_path) -> None:
    data, run = copied_distill
    out = killed_copy(run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    other = shutil.copytree(data, tmp_path / "other" / "imgs")
    next(other.glob("*.png")).unlink()
    ckpt = out / "checkpoints" / "step_00000001.ckpt"
    line = (
        rf"^checkpoint {ckpt} was written with data\.sources\[0\]\.paths=\['{data}'\] but this run has "
        rf"data\.sources\[0\]\.paths=\['{other}'\]; .* data_paths\.json records; .* make the old path '{data}' a "
        r"symbolic link to the new folder and resume with the old path$"
    )
    with pytest.raises(CheckpointError, match=line) as err:
        distill(_cfg(other, out, ONE_STUDENT))
    assert "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # config.yaml, stamp: as found
