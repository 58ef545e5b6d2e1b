"""Multi-rank resume (distillation and pretraining, one rule in `resume_point`): ranks that see different
checkpoints (a node-local output_dir) are refused in one line instead of resuming from different steps."""

from __future__ import annotations

import pytest

from geodino.errors import CheckpointError
from geodino.train import resume_point as rp


def test_ranks_reading_one_folder_that_see_no_checkpoint_where_another_does_are_refused(tmp_path) -> None:
    d = str(tmp_path / "checkpoints")
    with pytest.raises(CheckpointError) as err:
        rp.check_resume_views([(40, d), (None, d)], same_step=False)
    assert str(err.value) == f"rank 1 sees no checkpoint in {d} while rank 0 sees step 40; {rp.SHARED_FOLDER}"
    rp.check_resume_views([(40, d), (40, d)], same_step=False)  # shared: fine
    rp.check_resume_views([(None, d), (None, d)], same_step=False)  # a new run: fine
    rp.check_resume_views([(40, d), (20, d)], same_step=False)  # distillation: the oldest newest step, below
    rp.check_resume_views([(40, d), (None, d + "_b")], same_step=False)  # another student's folder: its own rule


def test_same_step_compares_every_rank_and_steps_too(tmp_path) -> None:
    """Pretraining: Lightning resumes each rank from the checkpoint it names, so another newest step is refused,
    and so is another folder's view (per-node paths); the rank that sees less is named first."""
    a, b = str(tmp_path / "node0"), str(tmp_path / "node1")
    with pytest.raises(CheckpointError) as err:
        rp.check_resume_views([(4, a), (2, a)], same_step=True)
    assert str(err.value).startswith(f"rank 1 sees step 2 in {a} while rank 0 sees step 4; every rank resumes")
    with pytest.raises(CheckpointError) as err:
        rp.check_resume_views([(1, a), (None, b)], same_step=True)
    assert str(err.value).startswith(f"rank 1 sees no checkpoint in {b} while rank 0 sees step 1 in {a}; ")
    with pytest.raises(CheckpointError, match=r"^rank 0 sees no checkpoint in .* while rank 2 sees step 3"):
        rp.check_resume_views([(None, a), (None, a), (3, a)], same_step=True)
    rp.check_resume_views([(3, a), (3, b)], same_step=True)  # copies of the same checkpoints: fine


def test_agreed_resume_point_gathers_and_refuses(tmp_path, monkeypatch) -> None:
    """Rank 0 (this process) sees step 30; a faked second rank sees none in the same folder: refused, not step 0;
    one that sees step 20 there: every rank starts from 20 (distillation), refused with `same_step` (pretraining)."""
    import torch.distributed as dist

    from geodino.train.checkpoint_folder import find_checkpoints

    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / "step_00000030.ckpt").write_bytes(b"x")
    if not find_checkpoints(d):
        pytest.skip("checkpoint files need a real checkpoint here")
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    seen: list[tuple[int | None, str]] = []

    def gather(step: int | None, where: str) -> list[tuple[int | None, str]]:
        seen.append((step, where))
        return [(step, where), (None, where)]

    monkeypatch.setattr(rp, "_gather_views", gather)
    with pytest.raises(CheckpointError, match=r"rank 1 sees no checkpoint in .* while rank 0 sees step 30; every"):
        rp.agreed_resume_point("auto", d)
    assert seen == [(30, str(d.resolve()))]
    monkeypatch.setattr(rp, "_gather_views", lambda s, w: [(s, w), (20, w)])
    assert rp.agreed_resume_point("auto", d)[1] == 20  # the oldest newest step, as before
    with pytest.raises(CheckpointError, match=r"^rank 1 sees step 20 in .* while rank 0 sees step 30; every"):
        rp.agreed_resume_point("auto", d, same_step=True)
    assert rp.agreed_resume_point("never", d) == ({}, 0)  # no gather: a path or never names one start for all
