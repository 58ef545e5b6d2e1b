"""A pretraining start refused on some ranks only stops every rank in one line, before anything is written.

Two `geodino pretrain` processes launched as torchrun or a hand-written srun line would (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT), `trainer.strategy=ddp` on the CPU, each with its own output_dir (a node-local disk). Before, the
start's checks (run folder, data, resume checkpoint, init_from) ran before any process group existed: the refusing
rank exited 2 alone, while rank 0 wrote config.yaml, data_paths.json and schedules.png and waited in Lightning's
rendezvous for it (30 min by default; the test's deadline fails instead). Now the group is joined first
(`pretrain_start.join_launched_group`) and the checks are agreed (`refusals_agreed`): both exit 2 with the same line
naming the rank that refused, and rank 0's new folder is removed again. A start every rank accepts still trains.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import write_config

CODE = "import sys; from geodino.cli import main; sys.exit(main(sys.argv[1:]))"


def _launch(tmp_path: Path, data: Path, *over: str, timeout: float = 90) -> list[tuple[int, str]]:
    """Both ranks' exit codes and stderr; each rank's output_dir is tmp_path/node<rank>/run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        cfg = write_config(tmp_path / f"c{rank}.yaml", tmp_path / f"node{rank}" / "run", data)
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
        env.pop("NODE_RANK", None)
        args = ["pretrain", "-c", str(cfg), "trainer.devices=2", "trainer.strategy=ddp", *over]
        cmd = [sys.executable, "-c", CODE, *args]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:  # before: rank 0 waiting in Lightning's rendezvous for rank 1
        for p in procs:
            p.kill()
            p.communicate()
        pytest.fail(f"a rank was still running {timeout} s after the start")
    return [(p.returncode, err) for p, (_, err) in zip(procs, outs, strict=True)]


def test_resume_never_in_a_folder_only_rank_1_sees_used_stops_both_ranks_and_writes_nothing(
    tiny_data: Path, tmp_path: Path
) -> None:
    used = tmp_path / "node1" / "run" / "checkpoints"
    used.mkdir(parents=True)
    (used / "step_00000002.ckpt").write_bytes(b"x")
    said = _launch(tmp_path, tiny_data, "checkpoint.resume=never")
    want = (
        f"geodino: error: rank 1 refused the start (rank 0 did not): output_dir {tmp_path / 'node1' / 'run'} already "
        "holds checkpoints (step_00000002.ckpt); resume with checkpoint.resume=auto or choose another output_dir"
    )
    for code, err in said:
        assert code == 2, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("geodino: error:")]
        assert errors == [want], err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    # rank 0 wrote nothing (before: config.yaml, data_paths.json, schedules.png) and its new folder is gone
    assert not (tmp_path / "node0").exists() or not any((tmp_path / "node0").rglob("*")), list(
        (tmp_path / "node0").rglob("*")
    )
    assert sorted(p.name for p in (tmp_path / "node1" / "run").rglob("*")) == ["checkpoints", "step_00000002.ckpt"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_start_every_rank_accepts_trains_one_step_in_the_early_joined_group(tiny_data: Path, tmp_path: Path) -> None:
    said = _launch(tmp_path, tiny_data, "trainer.max_steps=1", "checkpoint.export_at_end=false")
    for code, err in said:
        assert code == 0, err[-3000:]
    ckpts = sorted(p.name for p in (tmp_path / "node0" / "run" / "checkpoints").iterdir())
    assert "step_00000001.ckpt" in ckpts, ckpts
    assert (tmp_path / "node0" / "run" / "config.yaml").is_file()
    assert not (tmp_path / "node1" / "run" / "config.yaml").exists()  # rank 0 alone writes the start files


def test_one_process_joins_no_group(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:
    """A single-process run (no launcher variables) is unchanged: no process group is joined before Lightning's."""
    import torch.distributed as dist

    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig, world_size
    from geodino.train.pretrain_start import join_launched_group

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data))
    assert join_launched_group(cfg, world_size(cfg)) is False
    cfg.trainer.devices, cfg.trainer.strategy = 2, "ddp"
    assert join_launched_group(cfg, world_size(cfg)) is False  # ddp without a launcher: Lightning launches
    assert not dist.is_initialized()


def test_resume_auto_with_checkpoints_on_rank_0s_node_only_stops_both_ranks(tiny_data: Path, tmp_path: Path) -> None:
    """Per-node output_dirs: only rank 0 writes checkpoints, so a re-run resumed rank 0 from its newest and rank 1
    from none (measured: rank 0 trained step 2 and wrote it, rank 1 still waiting at 120 s). The ranks must see the
    same newest checkpoint; each node's copy of the same step goes on to the checks of the checkpoint itself."""
    (tmp_path / "node0" / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "node0" / "run" / "checkpoints" / "step_00000001.ckpt").write_bytes(b"x")  # never opened
    want = (
        f"geodino: error: rank 1 sees no checkpoint in {tmp_path / 'node1' / 'run' / 'checkpoints'} while rank 0 "
        f"sees step 1 in {tmp_path / 'node0' / 'run' / 'checkpoints'}; every rank resumes from its own copy"
    )
    for code, err in _launch(tmp_path, tiny_data, "trainer.max_steps=2"):
        assert code == 2, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("geodino: error:")]
        assert len(errors) == 1 and errors[0].startswith(want), err[-3000:]
    assert not (tmp_path / "node1").exists() or not any((tmp_path / "node1").rglob("*"))

    (tmp_path / "node1" / "run" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (tmp_path / "node1" / "run" / "checkpoints" / "step_00000001.ckpt").write_bytes(b"x")
    for code, err in _launch(tmp_path, tiny_data, "trainer.max_steps=2"):  # the same step on both: its own check
        errors = [line for line in err.splitlines() if line.startswith("geodino: error:")]
        assert code == 2 and len(errors) == 1, err[-3000:]
        assert f"the newest checkpoint of {tmp_path / 'node0' / 'run'}, step_00000001.ckpt, is corrupt" in errors[0]


def test_ranks_lightning_launches_itself_are_left_to_it(tiny_data: Path, tmp_path: Path) -> None:
    """`geodino pretrain trainer.devices=2 trainer.strategy=ddp` from one command: Lightning starts rank 1 itself
    with WORLD_SIZE but no RANK, after rank 0's checks. Joining early there made rank 1 fail ('environment variable
    RANK expected') and rank 0 wait for it until killed; such ranks join in Lightning's setup, as before."""
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK")}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    args = ["trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.max_steps=1"]
    cmd = [sys.executable, "-m", "geodino.cli", "pretrain", "-c", str(cfg), *args, "checkpoint.export_at_end=false"]
    try:  # python -m: Lightning re-runs this command line for rank 1
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail("the Lightning-launched run was still running after 150 s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "step_00000001.ckpt").is_file()
