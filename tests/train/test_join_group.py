"""The join of a launched multi-process run (`geodino.train.join_group`, for pretraining's early join
`pretrain_start.join_launched_group` and distillation's `init_distributed`) agrees the device and is bounded and
interruptible.

The backend follows the device (NCCL on CUDA, gloo on CPU), so a rank that sees no GPU cannot join the others'
NCCL group. Before, a GPU asked for on such a rank stopped it alone (distillation: refused before joining;
pretraining: raised in `torch.cuda.set_device`) while the others waited in the rendezvous (30 min); `auto` made it
join gloo while the others joined NCCL (a hang in the first collective); a process killed before joining left the
others waiting 30 min in silence (now GEODINO_JOIN_TIMEOUT, one line); a SIGTERM while waiting was held until the
store's wait ended.

Two processes started as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT), rank 0 shown a GPU
(`torch.cuda.is_available` patched), rank 1 none; no GPU is used."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from geodino.errors import ConfigError, GeoDinoError
from tests.train.conftest import write_config

# the cases each command's ranks go through, one port each: (name, the override); "lost": rank 1 never joins
CASES = {
    "pretrain": [(c, f"trainer.accelerator={c}") for c in ("gpu", "auto", "cpu")],
    "distill": [(c, f"train.device={c}") for c in ("cuda", "auto", "cpu")] + [("lost", "train.device=cpu")],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, root: str, command: str, ports: dict[str, int]) -> None:
    import torch
    import torch.distributed as dist

    from geodino.config import load_config
    from geodino.train.distill import DistillConfig
    from geodino.train.distill.processes import init_distributed
    from geodino.train.pretrain import PretrainConfig
    from geodino.train.pretrain_start import join_launched_group

    torch.cuda.is_available = lambda: rank == 0  # rank 1's node has no GPU
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    path = write_config(Path(root) / f"c{rank}.yaml", Path(root) / "run", Path(root))
    for case, override in CASES[command]:
        if case == "lost" and rank == 1:
            break  # killed before joining: rank 0 waits GEODINO_JOIN_TIMEOUT for it
        os.environ.update(MASTER_PORT=str(ports[case]), GEODINO_JOIN_TIMEOUT="2" if case == "lost" else "60")
        began = time.monotonic()
        try:
            if command == "pretrain":
                cfg = load_config(PretrainConfig, path, ["trainer.devices=2", "trainer.strategy=ddp", override])
                assert join_launched_group(cfg, 2)
            else:
                cfg = load_config(DistillConfig, None, ["data.sources=[{type: images, paths: [/tmp]}]", override])
                init_distributed(cfg)
            said = f"joined on {dist.get_backend()}"
            dist.barrier()  # the group works
            dist.destroy_process_group()
        except GeoDinoError as exc:
            said = f"{type(exc).__name__}: {exc}"
        except Exception:
            said = traceback.format_exc()
        (Path(root) / f"{case}.rank{rank}.txt").write_text(f"{time.monotonic() - began:.1f} {said}")
    os._exit(0)


@pytest.mark.parametrize(
    ("command", "key", "gpu"), [("pretrain", "trainer.accelerator", "gpu"), ("distill", "train.device", "cuda")]
)
def test_a_gpu_one_rank_lacks_stops_every_rank_in_one_line(
    command: str, key: str, gpu: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    ports = {case: _free_port() for case, _ in CASES[command]}
    mp.spawn(_rank_main, args=(str(tmp_path), command, ports), nprocs=2, join=True)

    def said(case: str, rank: int) -> tuple[float, str]:
        took, line = (tmp_path / f"{case}.rank{rank}.txt").read_text().split(" ", 1)
        return float(took), line

    # before: rank 1 stopped alone (pretraining: raised in torch.cuda.set_device) while rank 0 waited in the
    # rendezvous (30 min)
    want = f"ConfigError: rank 1 refused the start (rank 0 did not): {key}={gpu} but no CUDA device is visible; use "
    want += f"{key}=cpu"
    assert [said(gpu, r)[1] for r in (0, 1)] == [want, want]
    # before: rank 0 joined NCCL, rank 1 gloo, both waited in the first collective
    want = (
        f"ConfigError: {key}=auto gave CUDA on rank(s) 0 and the CPU on rank(s) 1 (no CUDA device visible there); "
        f"every process must run on the same kind of device: make a GPU visible to each, or set {key}=cpu"
    )
    assert [said("auto", r)[1] for r in (0, 1)] == [want, want]
    assert [said("cpu", r)[1] for r in (0, 1)] == ["joined on gloo", "joined on gloo"]
    if command == "distill":  # the join's bound (shared: checked once)
        took, line = said("lost", 0)
        assert line.startswith(
            f"TrainingError: the 2 processes of the run did not all join at 127.0.0.1:{ports['lost']} within 2 s ("
        ), line
        assert (
            line.endswith(
                "a process failed or was killed before joining (see its output); GEODINO_JOIN_TIMEOUT=SECONDS sets "
                "this wait"
            )
            and "\n" not in line
        ), line
        assert took < 20, took  # before: 30 min


def test_join_timeout_is_read_in_seconds_and_a_bad_value_is_one_line(monkeypatch) -> None:
    from geodino.train.join_group import join_timeout

    monkeypatch.delenv("GEODINO_JOIN_TIMEOUT", raising=False)
    assert join_timeout() == datetime.timedelta(minutes=30)
    monkeypatch.setenv("GEODINO_JOIN_TIMEOUT", "90")
    assert join_timeout() == datetime.timedelta(seconds=90)
    for bad in ("soon", "0", "-5", "nan"):
        monkeypatch.setenv("GEODINO_JOIN_TIMEOUT", bad)
        with pytest.raises(ConfigError, match=rf"^GEODINO_JOIN_TIMEOUT='{bad}' must be a number of seconds > 0"):
            join_timeout()


@pytest.mark.parametrize("command", ["pretrain", "distill"])
def test_sigterm_while_waiting_for_the_others_to_join_stops_at_once(
    command: str, tiny_data: Path, images: Path, tmp_path: Path
) -> None:
    """Rank 0 of 2 waits in the rendezvous for a rank that never comes (killed before joining); a SIGTERM then (a
    `kill`, the scheduler) waited for the end of the store's wait (30 min; here GEODINO_JOIN_TIMEOUT=120) before the
    CLI's handler could run. Now both commands stop at once with the CLI's line and exit code, having written
    nothing."""
    from tests.train.conftest import ONE_STUDENT
    from tests.train.test_distill import _overrides

    port = _free_port()
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1"}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo", GEODINO_JOIN_TIMEOUT="120")
    env.pop("NODE_RANK", None)
    if command == "pretrain":
        cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
        args = ["-c", str(cfg), "trainer.devices=2", "trainer.strategy=ddp"]
    else:
        args = _overrides(images, tmp_path / "run", ONE_STUDENT)
    code = "import sys; from geodino.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # rank 0 hosts the rendezvous's store: listening means it waits there
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.2)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - sent < 10  # before: GEODINO_JOIN_TIMEOUT's 120 s
    assert proc.returncode == 143 and "geodino: interrupted" in err, err[-2000:]
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*"))  # nothing written


@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_a_cuda_accelerator_without_a_gpu_is_one_line_before_any_folder(
    accelerator: str, tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """One process: Lightning raised `MisconfigurationException: No supported gpu backend found!` with a traceback,
    after the run folder was made (it stayed behind, empty)."""
    import torch

    from geodino.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "-c", str(cfg), f"trainer.accelerator={accelerator}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"geodino: error: trainer.accelerator={accelerator} but no CUDA device is visible; use trainer.accelerator=cpu"
    )
    assert not (tmp_path / "run").exists()
