"""A relaunch with the other placement of the students (ef7fb5a) is chosen by each rank from the folders it reads.
Before, no collective compared the ranks: with an output_dir on each node's own disk one rank could resume the other
placement's checkpoints at step N while another started its own placement at step 0. `take_run_folder` now gathers
every rank's two placement steps (`rank_agreement.gather_ints`) and refuses in one line when they differ, as
`resume_point.check_resume_views` does for a placement's own checkpoints; ranks that agree choose as before."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from geodino.errors import CheckpointError
from geodino.train.distill.placement_resume import Switch, other_placement

SHARED = (
    "put output_dir on a filesystem every node shares (or give each node a copy of the same checkpoints), or start a "
    "new output_dir"
)


def _ckpt(folder: Path, step: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"step_{step:08d}.ckpt"
    p.write_bytes(b"x")
    return p


def _own_ranks_run(out: Path, step: int) -> dict[str, Path]:
    """Students a and b saved on their own ranks at `step`."""
    return {n: _ckpt(out / n / "checkpoints", step) for n in ("a", "b")}


def test_ranks_that_see_other_steps_are_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _own_ranks_run(out, 2)
    seen: list[tuple[int, ...]] = []

    def gather(*mine: int) -> list[tuple[int, ...]]:  # rank 1 (another node) sees an empty folder
        seen.append(mine)
        return [mine, (0, 0)]

    with pytest.raises(CheckpointError) as err:
        other_placement(out, ["a", "b"], colocated=True, gather=gather)
    line = str(err.value)
    assert seen == [(0, 2)]  # this placement (co-located): none; the other: step 2
    assert "\n" not in line and line.endswith(SHARED)
    assert line.startswith(
        f"rank 1 sees no co-located checkpoints and none on their own ranks in {out} while rank 0 sees no co-located "
        "checkpoints and checkpoints of students on their own ranks up to step 2"
    )


def test_ranks_that_agree_choose_as_one_process_does(tmp_path: Path) -> None:
    out = tmp_path / "run"
    paths = _own_ranks_run(out, 2)
    alone = other_placement(out, ["a", "b"], colocated=True)
    assert alone == (Switch(2, paths, False), None)
    assert other_placement(out, ["a", "b"], colocated=True, gather=lambda *v: [v, v, v]) == alone


def test_check_same_steps_names_the_placements_as_the_launch_has_them(tmp_path: Path) -> None:
    from geodino.train.distill.placement_resume import check_same_steps

    check_same_steps([(3, 1), (3, 1)], tmp_path, colocated=False)  # alike: nothing said
    with pytest.raises(CheckpointError, match=r"^rank 2 sees co-located checkpoints up to step 4 and none on their"):
        check_same_steps([(1, 4), (1, 4), (0, 4)], tmp_path, colocated=False)


def _rank_main(rank: int, root: str, init: str) -> None:
    """One of two gloo ranks: each has its own output_dir (a node-local disk), rank 0's holding own-rank checkpoints;
    takes the run folder co-located as `geodino distill` does and records what happened."""
    import torch.distributed as dist

    from geodino.train.distill.config import DistillConfig, StudentSpec
    from geodino.train.distill.run_folder import Start, take_run_folder

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    out = Path(root) / f"node{rank}" / "run"
    if rank == 0:
        _own_ranks_run(out, 2)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DistillConfig(output_dir=str(out), students=[StudentSpec(name="a"), StudentSpec(name="b")])
    cfg.train.global_batch_size = 4
    try:
        take_run_folder(cfg, Start(), rank, None)
        said = "taken"
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}" if isinstance(exc, CheckpointError) else traceback.format_exc()
    (Path(root) / f"rank{rank}.txt").write_text(said)
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # gloo's threads can abort an exiting interpreter (SIGABRT), as geodino.train.leave_group says


def test_two_gloo_ranks_on_their_own_disks_are_both_refused(tmp_path: Path, monkeypatch) -> None:
    init = f"file://{tmp_path / 'rendezvous'}"
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    mp.spawn(_rank_main, args=(str(tmp_path), init), nprocs=2, join=True)
    said = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    for line in said:  # before: rank 0 went on to resume step 2 of the other placement, rank 1 started at 0
        assert line.startswith("CheckpointError: rank 1 sees no co-located checkpoints") and line.endswith(SHARED), said
