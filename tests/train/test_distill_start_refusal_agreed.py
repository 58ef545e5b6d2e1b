"""A distillation start refused on some ranks only stops every rank in one line. `take_run_folder`'s checks read each
rank's own file system (rank 0's lock, `train.resume=never`'s used folder, `check_resume_config` of the checkpoint it
would resume) with no collective: with an output_dir on each node's own disk, the refusing rank stopped while the
others went on (rank 0 writing config.yaml, data_paths.json and schedules.png) to wait in the next collective for
it: a hang under NCCL, a gloo traceback. The refusal is now agreed (`rank_agreement.agree_on_refusal`) before the first
collective: every rank raises the lowest refusing rank's line, naming it and the ranks that did not refuse.

Two gloo ranks, each with its own output_dir (a node-local disk), take the run folder as `geodino distill` does and
then enter a barrier (the start's next collective) under a 30 s process-group timeout, so a rank left waiting fails
instead of hanging. One launch of the two ranks (`agreed`, once per module) runs every case in turn, the data case
first (a whole `geodino.distill`, in fresh processes); each test checks its cases' lines."""

from __future__ import annotations

import datetime
import os
import traceback
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from geodino.errors import GeoDinoError

USED = "already holds checkpoints (checkpoints/step_00000002.ckpt); resume with train.resume=auto or choose another"


def _cfg(out: Path, resume: str):
    from geodino.train.distill.config import DistillConfig, StudentSpec

    cfg = DistillConfig(output_dir=str(out), students=[StudentSpec(name="a"), StudentSpec(name="b")])
    cfg.train.global_batch_size = 4
    cfg.train.resume = resume
    return cfg


def _checkpoint(out: Path, seed: int) -> None:
    """A co-located checkpoint of step 2 of `_cfg` written with train.seed=`seed`."""
    from geodino.config import to_dict
    from geodino.train.distill.export import FORMAT

    saved = to_dict(_cfg(out, "auto"))
    saved["train"]["seed"] = seed
    (out / "checkpoints").mkdir(parents=True)
    torch.save({"format": FORMAT, "step": 2, "config": saved}, out / "checkpoints" / "step_00000002.ckpt")


def _rank_main(rank: int, root: str, images: str, cases: list[tuple[str, str, dict[int, str]]]) -> None:
    """One of two gloo ranks: first `_distill_data` (a whole distillation), then for each case (name, train.resume,
    what each rank's own folder holds: 'used', 'seed' (a checkpoint of another seed), 'ok' (of this run's seed)),
    take the run folder, then the next collective."""
    import torch.distributed as dist

    from geodino.train.distill.run_folder import Start, take_run_folder

    init = f"file://{Path(root) / 'rendezvous'}"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30))
    _distill_data(rank, Path(root) / "data", images)
    for name, resume, holds in cases:
        out = Path(root) / name / f"node{rank}" / "run"
        out.mkdir(parents=True, exist_ok=True)
        what = holds.get(rank)
        if what == "used":
            (out / "checkpoints").mkdir()
            (out / "checkpoints" / "step_00000002.ckpt").write_bytes(b"x")
        elif what in ("seed", "ok"):
            _checkpoint(out, 7 if what == "seed" else 0)
        try:
            take_run_folder(_cfg(out, resume), Start(), rank, None)
            dist.barrier()  # the start's next collective: every rank that went ahead waits here
            said = "taken"
        except GeoDinoError as exc:
            said = f"{type(exc).__name__}: {exc}"
        except Exception:
            said = traceback.format_exc()
        (Path(root) / f"{name}.rank{rank}.txt").write_text(said)
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # gloo's threads can abort an exiting interpreter (SIGABRT), as geodino.train.leave_group says


CASES = [
    ("zero", "never", {0: "used"}),
    ("one", "never", {1: "used"}),
    ("both", "never", {0: "used", 1: "used"}),
    ("seed", "auto", {0: "ok", 1: "seed"}),
    ("locked", "auto", {}),  # rank 0's folder is held by another run (the test's process)
    ("agreed", "auto", {0: "ok", 1: "ok"}),
]


@pytest.fixture(scope="module")
def agreed(images: Path, tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """The launch's folder and, by case (`CASES` and `data`), what each rank said."""
    from geodino.run_lock import lock_run_folder, release_run_folder

    root = tmp_path_factory.mktemp("agreed")
    held = root / "locked" / "node0" / "run"
    held.mkdir(parents=True)
    lock_run_folder(held)  # another run (this process) holds rank 0's folder
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
            env.setenv("OMP_NUM_THREADS", "1")
            mp.spawn(_rank_main, args=(str(root), str(images), CASES), nprocs=2, join=True)
    finally:
        release_run_folder(held)
    names = [name for name, _, _ in CASES] + ["data"]
    return root, {name: [(root / f"{name}.rank{r}.txt").read_text() for r in (0, 1)] for name in names}


def test_resume_never_in_a_folder_one_rank_sees_used_stops_every_rank(agreed) -> None:
    root, said = agreed
    for name, first, other in (("zero", 0, 1), ("one", 1, 0)):
        want = (
            f"InputError: rank {first} refused the start (rank {other} did not): output_dir "
            f"{root / name / f'node{first}' / 'run'} {USED} output_dir"
        )
        # before: the refusing rank stopped alone, the other failed in the barrier with a gloo traceback
        assert said[name] == [want, want], said[name]
    # every rank refused (a shared folder): rank 0's line as one process says it, on both
    want = f"InputError: output_dir {root / 'both' / 'node0' / 'run'} {USED} output_dir"
    assert said["both"] == [want, want], said["both"]


def test_a_resume_config_refused_on_one_rank_stops_every_rank(agreed) -> None:
    root, said = agreed
    held = root / "locked" / "node0" / "run"
    ckpt = root / "seed" / "node1" / "run" / "checkpoints" / "step_00000002.ckpt"
    for line in said["seed"]:  # before: rank 1 stopped alone, rank 0 went on to the barrier
        assert line.startswith(
            f"CheckpointError: rank 1 refused the start (rank 0 did not): checkpoint {ckpt} was written with "
            "train.seed=7 but this run has train.seed=0"
        ), said["seed"]
        assert "\n" not in line
    for line in said["locked"]:  # rank 0 alone takes the lock
        assert line.startswith(
            f"InputError: rank 0 refused the start (rank 1 did not): output_dir {held} is in use by another run"
        ), said["locked"]
        assert "\n" not in line
    assert said["agreed"] == ["taken", "taken"]


def test_one_process_raises_its_own_refusal_unchanged() -> None:
    from geodino.errors import CheckpointError
    from geodino.train.rank_agreement import agree_on_refusal

    agree_on_refusal(None)
    error = CheckpointError("the line")
    with pytest.raises(CheckpointError) as got:
        agree_on_refusal(error)
    assert got.value is error


def _distill_data(rank: int, root: Path, images: str) -> None:
    """`geodino.distill` on this rank's own output_dir and its own copy of the data (a node-local disk): rank 1's copy
    is truncated, so its data probe refuses and rank 0's does not; what it said goes to `root`/../data.rankR.txt."""
    from geodino.train.distill import distill
    from tests.train.conftest import ONE_STUDENT
    from tests.train.test_distill import _cfg as distill_cfg

    data = root / f"data{rank}"
    data.mkdir(parents=True)
    for png in sorted(Path(images).glob("*.png")):
        body = png.read_bytes()
        (data / png.name).write_bytes(body[:200] if rank == 1 else body)
    try:
        distill(distill_cfg(data, root / f"node{rank}" / "run", ONE_STUDENT))
        said = "trained"
    except GeoDinoError as exc:
        said = f"{type(exc).__name__}: {exc}"
    except Exception:
        said = traceback.format_exc()
    (root.parent / f"data.rank{rank}.txt").write_text(said)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_data_one_rank_cannot_read_stops_every_rank_before_any_file_is_written(agreed) -> None:
    root, said = agreed
    for line in said["data"]:  # before: rank 1 stopped alone; rank 0 wrote its start files and died in the warm-up
        assert line.startswith("InputError: rank 1 refused the start (rank 0 did not): "), said["data"]
        assert "failed to decode" in line and "\n" not in line, said["data"]
    assert not (root / "data" / "node0" / "run").exists()  # nothing written (config.yaml, schedules.png), removed


def test_a_file_missing_on_one_node_stops_every_rank_instead_of_a_wait_to_join(images: Path, tmp_path: Path) -> None:
    """Two `geodino distill` processes launched as srun/torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT), rank 1's
    node lacking the teacher.heads file: it was refused before the process group was joined, so rank 0 waited for
    rank 1 to join (30 min). Now the files are checked after joining and agreed: both exit 2 within the deadline."""
    import socket
    import subprocess
    import sys

    from tests.train.conftest import ONE_STUDENT
    from tests.train.test_distill import _overrides

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    heads = tmp_path / "teacher.heads.pth"
    heads.write_bytes(b"x")  # rank 0's copy (never read: the start is refused first)
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
        where = heads if rank == 0 else tmp_path / "node1" / "teacher.heads.pth"
        args = _overrides(images, tmp_path / f"node{rank}" / "run", ONE_STUDENT, f"teacher.heads={where}")
        code = "import sys; from geodino.cli import main; sys.exit(main(sys.argv[1:]))"
        cmd = [sys.executable, "-c", code, "distill", *args]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=60) for p in procs]
    except subprocess.TimeoutExpired:  # before: rank 0 still waiting for rank 1 to join
        for p in procs:
            p.kill()
            p.communicate()
        pytest.fail("a rank was still running 60 s after the other refused the start")
    want = f"geodino: error: rank 1 refused the start (rank 0 did not): teacher.heads file {tmp_path / 'node1'}"
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 2, err[-2000:]
        errors = [line for line in err.splitlines() if line.startswith("geodino: error:")]
        assert len(errors) == 1 and errors[0].startswith(want), err
