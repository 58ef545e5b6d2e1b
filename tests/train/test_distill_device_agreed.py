"""A distillation process's device is agreed while the processes join, and a join that cannot complete ends.

The backend follows the device (NCCL on CUDA, gloo on CPU), so a rank that sees no GPU cannot join the others'
NCCL group. `train.device=cuda` on such a rank was refused before joining: it stopped alone while the others waited
in the rendezvous for it (30 min); `train.device=auto` made it join gloo while the others joined NCCL (a hang in the
first collective). Now every rank tells the others its device through the rendezvous's store and all stop in one
line, or join together. A process killed before joining left the others waiting 30 min in silence;
GEODINO_JOIN_TIMEOUT sets that wait, and its end is one line.

Two processes started as torchrun/srun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT), rank 0 shown a GPU
(`torch.cuda.is_available` patched), rank 1 none; no GPU is used."""

from __future__ import annotations

import os
import socket
import time
import traceback
from pathlib import Path

import torch.multiprocessing as mp

from geodino.errors import GeoDinoError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, root: str, ports: dict[str, int]) -> None:
    import torch
    import torch.distributed as dist

    from geodino.config import load_config
    from geodino.train.distill import DistillConfig
    from geodino.train.distill.processes import init_distributed

    torch.cuda.is_available = lambda: rank == 0  # rank 1's node has no GPU
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    for case, device in (("cuda", "cuda"), ("auto", "auto"), ("cpu", "cpu"), ("lost", "cpu")):
        if case == "lost" and rank == 1:
            break  # killed before joining: rank 0 waits GEODINO_JOIN_TIMEOUT for it
        os.environ.update(MASTER_PORT=str(ports[case]), GEODINO_JOIN_TIMEOUT="2" if case == "lost" else "30")
        cfg = load_config(
            DistillConfig, None, ["data.sources=[{type: images, paths: [/tmp]}]", f"train.device={device}"]
        )
        began = time.monotonic()
        try:
            said = f"joined on {init_distributed(cfg)}"
            dist.barrier()  # the group works
            dist.destroy_process_group()
        except GeoDinoError as exc:
            said = f"{type(exc).__name__}: {exc}"
        except Exception:
            said = traceback.format_exc()
        (Path(root) / f"{case}.rank{rank}.txt").write_text(f"{time.monotonic() - began:.1f} {said}")
    os._exit(0)


def test_a_device_one_rank_lacks_stops_every_rank_and_a_lost_rank_ends_the_wait(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    ports = {case: _free_port() for case in ("cuda", "auto", "cpu", "lost")}
    mp.spawn(_rank_main, args=(str(tmp_path), ports), nprocs=2, join=True)

    def said(case: str, rank: int) -> tuple[float, str]:
        took, line = (tmp_path / f"{case}.rank{rank}.txt").read_text().split(" ", 1)
        return float(took), line

    # before: rank 1 stopped alone before joining and rank 0 waited 30 min in the rendezvous
    want = (
        "ConfigError: rank 1 refused the start (rank 0 did not): train.device=cuda but no CUDA device is visible; "
        "use train.device=cpu"
    )
    assert [said("cuda", r)[1] for r in (0, 1)] == [want, want]
    # before: rank 0 joined NCCL, rank 1 gloo, both waited in the first collective
    want = (
        "ConfigError: train.device=auto gave CUDA on rank(s) 0 and the CPU on rank(s) 1 (no CUDA device visible "
        "there); every process must run on the same kind of device: make a GPU visible to each, or set train.device=cpu"
    )
    assert [said("auto", r)[1] for r in (0, 1)] == [want, want]
    assert [said("cpu", r)[1] for r in (0, 1)] == ["joined on cpu", "joined on cpu"]
    took, line = said("lost", 0)
    assert line.startswith(
        f"TrainingError: the 2 processes of the run did not all join at 127.0.0.1:{ports['lost']} within 2 s ("
    ), line
    assert (
        line.endswith(
            "a process failed or was killed before joining (see its output); GEODINO_JOIN_TIMEOUT=SECONDS "
            "sets this wait"
        )
        and "\n" not in line
    ), line
    assert took < 20, took  # before: 30 min
