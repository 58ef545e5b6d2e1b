"""What a distillation run says on the console: where the teacher's heads came from (a warm-up, with the share of the
random init it left, or a file) and, when it resumes, from which checkpoint and step, as `geodino pretrain` says its
resume. Both were written only to the `geodino.distill` logger, which the CLI does not show."""

from __future__ import annotations

from pathlib import Path

from geodino.train.distill import distill
from tests.train.test_distill import _cfg


def test_the_heads_source_and_a_resume_are_said_on_stderr(images: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    distill(_cfg(images, out))
    err = capsys.readouterr().err
    assert "geodino: teacher heads from warm-up (2 steps, EMA momentum" in err, err
    assert "of the random init left)" in err and "resuming" not in err, err

    # as if killed after step 1's checkpoint: the same command resumes there and says so, with the reused heads
    (out / "checkpoints" / "step_00000002.ckpt").unlink()
    distill(_cfg(images, out))
    err = capsys.readouterr().err
    assert f"geodino: resuming from {out / 'checkpoints' / 'step_00000001.ckpt'} at step 1 of 2" in err, err
    assert f"geodino: teacher heads from {out / 'teacher.heads.pth'}" in err, err
