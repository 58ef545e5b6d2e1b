"""Multi-rank distillation: the stop flag is agreed every STOP_CHECK_EVERY steps (not every step), and a resume
refuses ranks that see different checkpoint folders (a node-local output_dir)."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from geodino.errors import CheckpointError
from geodino.train.distill import loop
from geodino.train.distill import processes as pr
from geodino.train.stop import StopRequest


def _simulate(n_steps: int, ckpt_every: int, signal_at: dict[int, int], world: int = 2) -> tuple[int, list[int]]:
    """Run the loop's stop decision for `world` ranks over `n_steps` steps (rank r signalled after step
    `signal_at[r]`), the all-reduce being a MAX over the ranks' flags: (all-reduce calls, step each rank stops)."""
    stops = [StopRequest() for _ in range(world)]
    calls = 0
    stopped: list[int | None] = [None] * world
    for step in range(n_steps):
        done = step + 1
        for r, s in enumerate(stops):
            if signal_at.get(r) == step:
                s.signal = "SIGTERM"
        periodic = done % ckpt_every == 0 or done == n_steps
        if done < n_steps and loop.stop_due(done, periodic, True):
            calls += 1
            flags = [s.signal is not None for s in stops]
            for r, s in enumerate(stops):  # every rank's all-reduce sees every rank's flag
                if s.agreed(lambda wanted, flags=flags: any(flags)):
                    stopped[r] = done
        if any(x is not None for x in stopped):
            break
    return calls, stopped  # type: ignore[return-value]


def test_stop_flag_is_agreed_every_few_steps_and_all_ranks_stop_together() -> None:
    every = loop.STOP_CHECK_EVERY
    assert every > 1
    calls, stopped = _simulate(100, 1000, {})
    assert calls == 99 // every  # one collective per STOP_CHECK_EVERY steps, not one per step (99)
    calls, stopped = _simulate(100, 1000, {1: 12})
    assert stopped[0] == stopped[1] == 2 * every  # the first agreement after the signal, on both ranks
    _, stopped = _simulate(100, 7, {0: 6})
    assert stopped == [7, 7]  # a checkpoint step always agrees


def test_one_process_checks_every_step_without_a_collective() -> None:
    assert all(loop.stop_due(d, False, False) for d in range(1, 30))


def test_distill_loop_all_reduces_the_stop_flag_every_few_steps(images, tmp_path, monkeypatch) -> None:
    """A real run in a 1-process gloo group (distributed): `_any_rank` runs every STOP_CHECK_EVERY steps."""
    from tests.train.test_distill_heads_record import _cfg

    calls: list[bool] = []
    real = loop._any_rank
    monkeypatch.setattr(loop, "_any_rank", lambda wanted: calls.append(wanted) or real(wanted))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        n = 2 * loop.STOP_CHECK_EVERY + 3
        loop.distill(_cfg(images, tmp_path / "run", 64, f"train.max_steps={n}", "train.checkpoint_every_n_steps=1000"))
    finally:
        dist.destroy_process_group()
    assert len(calls) == 2  # after steps 10 and 20 (the last step needs none), not after each of 22 steps


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
