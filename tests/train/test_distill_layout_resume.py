"""A distillation keeps its checkpoints in `checkpoints/` when the students are co-located (one process, or no
`students.ranks`/`share`) and in `<student>/checkpoints/` when each has its own ranks. Relaunched with the other
placement (a 2-process run with ranks resumed on one process, where students are always co-located, or the other
way), `train.resume=auto` looked only in its own layout's folders, found nothing and trained again from step 0 beside
the earlier checkpoints, without a word. It is now refused in one line naming where the checkpoints are, and the
run folder is left as it was. (Measured with torchrun: a 2-process `ranks` run killed after step 1 and relaunched on
one process wrote a fresh `checkpoints/step_00000001.ckpt`.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geodino.errors import CheckpointError
from geodino.train.distill import distill
from geodino.train.distill.run_folder import refuse_other_layout
from tests.train.test_distill import _cfg

ONE = "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1, n_storage_tokens: 1}}]"


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_checkpoints_of_students_on_their_own_ranks_are_not_restarted_on_one_process(images, tmp_path) -> None:
    out = tmp_path / "run"
    distill(_cfg(images, out, ONE, "train.max_steps=1"))
    own = out / "tiny" / "checkpoints"  # where a run with the student on its own ranks keeps them
    own.mkdir()
    shutil.move(out / "checkpoints" / "step_00000001.ckpt", own / "step_00000001.ckpt")
    before = _files(out)
    line = (
        rf"^output_dir {out} holds checkpoints of students trained on their own ranks .*\(tiny/checkpoints/"
        r"step_00000001\.ckpt\) but this launch co-locates them .* would start again from step 0; resume with the "
        r"placement that wrote them"
    )
    with pytest.raises(CheckpointError, match=line) as err:
        distill(_cfg(images, out, ONE, "train.max_steps=2"))
    assert "\n" not in str(err.value)
    assert _files(out) == before  # no second series of checkpoints, log and config as they were


def test_co_located_checkpoints_are_not_restarted_by_a_launch_with_ranks(tmp_path) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "step_00000004.ckpt").write_bytes(b"x")
    (out / "a").mkdir()  # an export folder: no checkpoints of its own
    with pytest.raises(CheckpointError, match=r"trained co-located \(checkpoints/step_00000004\.ckpt\) but this "):
        refuse_other_layout(out, ["a", "b"], colocated=False)
    refuse_other_layout(out, ["a", "b"], colocated=True)  # its own layout: the resume goes ahead
    (out / "b" / "checkpoints").mkdir(parents=True)
    (out / "b" / "checkpoints" / "step_00000002.ckpt").write_bytes(b"x")
    refuse_other_layout(out, ["a", "b"], colocated=False)  # this layout has checkpoints too: resumed there
    refuse_other_layout(tmp_path / "empty", ["a"], colocated=False)  # a new folder
