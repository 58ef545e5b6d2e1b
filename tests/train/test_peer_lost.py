"""A rank whose peer dies mid-run says one line (exit code 1) instead of the backend's traceback.

Measured before (2 ranks of `geodino pretrain` under a hand launch, rank 1 killed with SIGKILL at ~step 60): rank 0
printed a 100-line `[rank0]: Traceback ...` ending in gloo's `RuntimeError: [.../pair.cc:545] Read error
[127.0.0.1]:9103: Connection reset by peer. This is typically caused by a remote worker hanging ...`. Here two
spawned ranks join gloo, rank 1 leaves at once, and rank 0 runs the CLI on a command whose collective then fails."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
from pathlib import Path


def _rank(rank: int, port: int, root: str) -> None:
    import time

    import torch
    import torch.distributed as dist

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo")
    dist.barrier()
    if rank == 1:
        os._exit(0)  # gone without a word, as a killed process is
    import geodino.train.commands as commands
    from geodino import cli

    def collective(args) -> int:
        for _ in range(50):  # the peer's socket closes within these
            dist.all_reduce(torch.ones(4))
            time.sleep(0.1)
        return 0

    commands._pretrain = collective  # the command the parser dispatches to
    sys.stderr = open(Path(root) / "err.txt", "w")  # kept open: the CLI ends the process with os._exit
    try:
        code = cli.main(["pretrain", "-c", str(Path(root) / "missing.yaml")])
    finally:
        sys.stderr.flush()
    os._exit(100 + code)  # not reached when the CLI leaves the group itself (os._exit(1))


def test_a_lost_peer_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_rank, args=(r, port, str(tmp_path))) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    err = (tmp_path / "err.txt").read_text()
    assert procs[0].exitcode == 1, (procs[0].exitcode, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith(
        "geodino: error: another process of the run stopped or lost its connection, so rank 0 of 2 stops too (gloo: "
    ), lines[0]
    assert lines[0].endswith(
        "see the other processes' output for why; the same command resumes from the newest checkpoint"
    ), lines[0]
    assert "pair.cc" not in lines[0] and "typically caused" not in lines[0]


def test_other_errors_and_runs_without_a_group_keep_their_traceback() -> None:
    from geodino.train.peer_lost import peer_lost_line

    assert peer_lost_line(RuntimeError("[pair.cc:545] Read error: Connection reset by peer")) is None  # no group
    assert peer_lost_line(ValueError("x")) is None
