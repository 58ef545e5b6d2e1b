"""Multi-rank distillation: a resume refuses ranks that see different checkpoint folders (a node-local
output_dir)."""

from __future__ import annotations

import pytest

from geodino.errors import CheckpointError
from geodino.train.distill import processes as pr


def test_resume_refuses_ranks_that_see_no_checkpoint_where_another_does(tmp_path) -> None:
    d = tmp_path / "checkpoints"
    with pytest.raises(CheckpointError) as err:
        pr.check_shared_checkpoints([(40, 1, 7), (0, 0, 7)], d)
    msg = str(err.value)
    assert msg == (
        f"rank 1 sees no checkpoint in {d} while rank 0 sees step 40; output_dir must be on a filesystem every node "
        "shares"
    )
    pr.check_shared_checkpoints([(40, 1, 7), (40, 1, 7)], d)  # shared: fine
    pr.check_shared_checkpoints([(0, 0, 7), (0, 0, 7)], d)  # a new run: fine
    pr.check_shared_checkpoints([(40, 1, 7), (0, 0, 8)], d)  # another student's folder, cut short: its own rule


def test_agreed_resume_point_gathers_and_refuses(tmp_path, monkeypatch) -> None:
    """Rank 0 (this process) sees step 30; a faked second rank sees none in the same folder: refused, not step 0."""
    from geodino.train.checkpoint_folder import find_checkpoints

    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / "step_00000030.ckpt").write_bytes(b"x")
    if not find_checkpoints(d):
        pytest.skip("checkpoint files need a real checkpoint here")
    seen: list[tuple[int, int, int]] = []

    def gather(step: int, has: int, where: int) -> list[tuple[int, int, int]]:
        seen.append((step, has, where))
        return [(step, has, where), (0, 0, where)]

    monkeypatch.setattr(pr, "_gather_views", gather)
    with pytest.raises(CheckpointError, match=r"rank 1 sees no checkpoint in .* while rank 0 sees step 30; output_dir"):
        pr.agreed_resume_point("auto", d, None, True)
    assert seen[0][:2] == (30, 1)
    monkeypatch.setattr(pr, "_gather_views", lambda s, h, w: [(s, h, w), (20, 1, w)])
    assert pr.agreed_resume_point("auto", d, None, True)[1] == 20  # the oldest newest step, as before
