"""A heads warm-up refused on one rank stops every rank in one line. The warm-up (a teacher without DINO/iBOT heads)
runs collectives every step (the heads' broadcast, Sinkhorn-Knopp, the gradients' all-reduce) while each rank reads
its own shard of its own copy of the data: a tile that only rank 1 could not read past the start's probe stopped
rank 1 alone and left rank 0 in the step's next collective (a gloo traceback, a hang under NCCL); rank 0's heads file
that could not be written (a full disk) left rank 1 in the barrier after the warm-up. Both are now agreed
(`rank_agreement.agreed_items`, `refusals_agreed`): every rank raises the refusing rank's line and rank 0's start
files are undone. With node-local output_dirs only rank 0 writes `teacher.heads.pth`: a re-run found it on rank 0
alone, which skipped the warm-up while rank 1 ran it (each waiting for the other, a gloo timeout); now every rank warms
up fresh heads, or all refuse in one line (`heads_record.agree_on_found`).

Two gloo ranks, each with its own output_dir (a node-local disk), run `geodino.distill` twice in one launch under a
30 s process-group timeout, so a rank left waiting fails instead of hanging."""

from __future__ import annotations

import datetime
import os
import traceback
from pathlib import Path

import pytest
import torch
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


def _plant_heads(out: Path, cfg) -> None:
    """A `teacher.heads.pth` as a warm-up of this run leaves it (its teacher's fingerprint, its record)."""
    from geodino.models.heads import DINOHead
    from geodino.train import teacher_heads
    from geodino.train.distill import build
    from geodino.train.distill.heads_record import warmup_record

    teacher, fb = build.load_teacher(cfg.teacher.spec, torch.device("cpu"))
    d, i, dim = cfg.dino, cfg.ibot, int(teacher.embed_dim)
    dino = DINOHead(dim, d.head_n_prototypes, d.head_hidden_dim, d.head_bottleneck_dim, d.head_nlayers)
    ibot = DINOHead(dim, i.head_n_prototypes, i.head_hidden_dim, i.head_bottleneck_dim, i.head_nlayers)
    meta = {"teacher_spec": cfg.teacher.spec, "teacher_fingerprint": str(fb.fingerprint), **warmup_record(cfg)}
    out.mkdir(parents=True)
    teacher_heads.save_heads_file(out / "teacher.heads.pth", dino, ibot, meta)


def _found_elsewhere(rank: int) -> list[str]:
    """`agree_on_found` where rank 0 alone found heads: the run folder's on a resume, a teacher file's at the start."""
    from geodino.train.distill.build import FoundHeads
    from geodino.train.distill.heads_record import agree_on_found

    said = []
    for saved, resuming in ((True, True), (False, False)):
        found = FoundHeads(dino=object(), ibot=object(), source="X.pth", saved=saved) if rank == 0 else FoundHeads()
        try:
            agree_on_found(found, resuming)
            said.append("went on")
        except GeoDinoError as exc:
            said.append(f"{type(exc).__name__}: {exc}")
    return said


def _rank_main(rank: int, root: str, images: str) -> None:
    import torch.distributed as dist

    from geodino.train import teacher_heads
    from geodino.train.distill import build, distill
    from tests.train.conftest import ONE_STUDENT
    from tests.train.test_distill import _cfg

    init = f"file://{Path(root) / 'rendezvous'}"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30))
    make, save = build.make_batches, teacher_heads.save_heads_file
    for case in ("tile", "disk", "heads"):
        cfg = _cfg(Path(images), Path(root) / case / f"node{rank}" / "run", ONE_STUDENT)
        if case == "heads" and rank == 0:  # a re-run of a run stopped after its warm-up, before its first checkpoint
            _plant_heads(Path(cfg.output_dir), cfg)
        if case == "tile" and rank == 1:
            build.make_batches = _second_batch_fails(make)
        if case == "disk" and rank == 0:
            teacher_heads.save_heads_file = _no_space
        try:
            distill(cfg)
            said = "trained"
        except GeoDinoError as exc:
            said = f"{type(exc).__name__}: {exc}"
        except Exception:
            said = traceback.format_exc()
        build.make_batches, teacher_heads.save_heads_file = make, save
        (Path(root) / f"{case}.rank{rank}.txt").write_text(said)
    (Path(root) / f"found.rank{rank}.txt").write_text("\n".join(_found_elsewhere(rank)))
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # gloo's threads can abort an exiting interpreter (SIGABRT), as geodino.train.leave_group says


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_warmup_refused_on_one_rank_stops_every_rank(images: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mp.spawn(_rank_main, args=(str(tmp_path), str(images)), nprocs=2, join=True)
    said = {
        case: [(tmp_path / f"{case}.rank{r}.txt").read_text() for r in (0, 1)] for case in ("tile", "disk", "heads")
    }
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
    # before: rank 0 reused its teacher.heads.pth and waited in the barrier, rank 1 in the warm-up's broadcast
    assert said["heads"] == ["trained", "trained"], said["heads"]
    meta = torch.load(tmp_path / "heads" / "node0" / "run" / "teacher.heads.pth", weights_only=False)
    assert "warmup_steps" in meta  # replaced by the fresh warm-up every rank ran
    found = [(tmp_path / f"found.rank{r}.txt").read_text().split("\n") for r in (0, 1)]
    want = (
        "ConfigError: the teacher's heads (X.pth) were found on rank(s) 0 but not on rank(s) 1; every process must "
        "read the same teacher files and output_dir: share output_dir between the nodes, or copy the file to the same "
        "path on each node"
    )
    assert found == [[want, want], [want, want]], found
    for case in ("tile", "disk"):  # rank 0's start files (config.yaml, schedules.png) undone, its folder removed
        assert not (tmp_path / case / "node0" / "run").exists()
