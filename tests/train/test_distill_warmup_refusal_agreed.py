"""A heads warm-up refused on one rank stops every rank in one line. The warm-up (a teacher without DINO/iBOT heads)
runs collectives every step (the heads' broadcast, Sinkhorn-Knopp, the gradients' all-reduce) while each rank reads
its own shard of its own copy of the data: a tile that only rank 1 could not read past the start's probe stopped
rank 1 alone and left rank 0 in the step's next collective (a gloo traceback, a hang under NCCL); rank 0's heads file
that could not be written (a full disk) left rank 1 in the barrier after the warm-up. Both are now agreed
(`rank_agreement.agreed_items`, `refusals_agreed`): every rank raises the refusing rank's line and rank 0's start
files are undone.

Two gloo ranks, each with its own output_dir (a node-local disk), run `geodino.distill` twice in one launch under a
30 s process-group timeout, so a rank left waiting fails instead of hanging."""

from __future__ import annotations

import datetime
import os
import traceback
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from geodino.errors import GeoDinoError, InputError

BAD_TILE = "tile im5.png of rank 1's copy failed to decode"


def _second_batch_fails(make):
    """`make_batches` whose second batch fails as a truncated tile would (after the start's probe read the first)."""

    def batches(*args, **kwargs):
        items = make(*args, **kwargs)
        yield next(items)
        raise InputError(BAD_TILE)

    return batches


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


def _rank_main(rank: int, root: str, images: str) -> None:
    import torch.distributed as dist

    from geodino.train import teacher_heads
    from geodino.train.distill import build, distill
    from tests.train.conftest import ONE_STUDENT
    from tests.train.test_distill import _cfg

    init = f"file://{Path(root) / 'rendezvous'}"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30))
    make, save = build.make_batches, teacher_heads.save_heads_file
    for case in ("tile", "disk"):
        if case == "tile" and rank == 1:
            build.make_batches = _second_batch_fails(make)
        if case == "disk" and rank == 0:
            teacher_heads.save_heads_file = _no_space
        try:
            distill(_cfg(Path(images), Path(root) / case / f"node{rank}" / "run", ONE_STUDENT))
            said = "trained"
        except GeoDinoError as exc:
            said = f"{type(exc).__name__}: {exc}"
        except Exception:
            said = traceback.format_exc()
        build.make_batches, teacher_heads.save_heads_file = make, save
        (Path(root) / f"{case}.rank{rank}.txt").write_text(said)
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # gloo's threads can abort an exiting interpreter (SIGABRT), as geodino.train.leave_group says


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_warmup_refused_on_one_rank_stops_every_rank(images: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mp.spawn(_rank_main, args=(str(tmp_path), str(images)), nprocs=2, join=True)
    said = {case: [(tmp_path / f"{case}.rank{r}.txt").read_text() for r in (0, 1)] for case in ("tile", "disk")}
    # before: rank 1 stopped alone, rank 0 failed in the warm-up's all-reduce with a gloo traceback
    want = f"InputError: rank 1 refused the start (rank 0 did not): {BAD_TILE}"
    assert said["tile"] == [want, want], said["tile"]
    # before: rank 0 stopped with an OSError traceback, rank 1 failed in the barrier after the warm-up
    heads = tmp_path / "disk" / "node0" / "run" / "teacher.heads.pth"
    want = (
        f"InputError: rank 0 refused the start (rank 1 did not): cannot write the warmed-up teacher heads {heads} "
        f"(No space left on device); free space in {heads.parent} (or make it writable) and run the same command again"
    )
    assert said["disk"] == [want, want], said["disk"]
    for case in ("tile", "disk"):  # rank 0's start files (config.yaml, schedules.png) undone, its folder removed
        assert not (tmp_path / case / "node0" / "run").exists()
