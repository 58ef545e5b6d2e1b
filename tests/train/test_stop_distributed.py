"""A SIGTERM that reaches one rank of a multi-process run stops every rank after the same step, with one complete
checkpoint of it, and the same command resumes to the weights of an uninterrupted run.

Each rank is a `geodino pretrain` / `geodino distill` process the test starts itself with the rank's environment
(as torchrun, srun or Lightning's own launcher start the ranks after rank 0), so the test sees every rank's exit
code and output. `tests/train/stop_worker.py` holds every rank before a known step until the test has signalled
one of them, so the step the run stops after is known. Ranks agree through one all-reduced flag per step (gloo,
CPU): a rank that stopped alone would leave the others blocked in the next collective.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("stop_worker.py")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120  # a rank still running by then hangs (a run takes ~10 s here)
STOP_LINE = re.compile(r"geodino: stopped after step (\d+) of (\d+) \(([^)]*)\); saved (\S+);")


class Ranks:
    """The processes of one multi-process run, each writing its output to `folder/rank_R.log`."""

    def __init__(self, folder: Path, argv: list[str], world: int = 2, gate_step: int | None = None) -> None:
        self.folder, self.gate = folder, folder / "gate"
        self.gate.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:  # a free port for the rendezvous, as Lightning's launcher picks one
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.procs: list[subprocess.Popen] = []
        for rank in range(world):
            env = {k: v for k, v in os.environ.items() if not k.startswith("GEODINO_TEST_")}
            env.update(
                OMP_NUM_THREADS="1",
                PYTHONWARNINGS="ignore",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
                WORLD_SIZE=str(world),
                NODE_RANK="0",
                RANK=str(rank),
                LOCAL_RANK=str(rank),
            )
            if gate_step is not None:
                env.update(GEODINO_TEST_GATE=str(self.gate), GEODINO_TEST_GATE_STEP=str(gate_step))
            with open(self.log_path(rank), "w") as log:
                cmd = [sys.executable, str(WORKER), *argv]
                self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

    def log_path(self, rank: int) -> Path:
        return self.folder / f"rank_{rank}.log"

    def log(self, rank: int) -> str:
        return self.log_path(rank).read_text()

    def _wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        """Poll `ready`; a rank that ended first or TIMEOUT_S passing fails the test (every rank killed)."""
        deadline = time.monotonic() + TIMEOUT_S
        while not ready():
            ended = {r: p.returncode for r, p in enumerate(self.procs) if p.poll() is not None}
            if ended or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{what}: ranks ended {ended} or timed out\n" + self.logs())
            time.sleep(0.05)

    def signal_one(self, rank: int, sig: signal.Signals = signal.SIGTERM) -> None:
        """Once every rank waits at the gate: signal `rank` alone, wait until it took the signal, let all go on."""
        self._wait_for("gate", lambda: all((self.gate / f"ready_{r}").exists() for r in range(len(self.procs))))
        os.kill(self.procs[rank].pid, sig)
        self._wait_for(f"rank {rank} to take {sig.name}", lambda: f"{sig.name} received" in self.log(rank))
        (self.gate / "go").touch()

    def wait(self) -> list[int]:
        """Every rank's exit code; a rank still running after TIMEOUT_S fails the test (a hang), killed first."""
        deadline = time.monotonic() + TIMEOUT_S
        try:
            return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in self.procs]
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("a rank hung\n" + self.logs())

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def logs(self) -> str:
        return "\n".join(f"--- rank {r}:\n{self.log(r)[-3000:]}" for r in range(len(self.procs)))


def _assert_stopped(ranks: Ranks, codes: list[int], target: int, step: int, max_steps: int) -> Path:
    """Every rank exited 130 after `step`, the signalled one alone took the signal, and rank 0 said where it
    stopped, naming the signal it took or another rank's; returns the checkpoint it names."""
    assert codes == [130] * len(codes), f"exit codes {codes}\n" + ranks.logs()
    logs = [ranks.log(r) for r in range(len(codes))]
    assert [("SIGTERM received" in log) for log in logs] == [r == target for r in range(len(codes))]
    assert all(log.rstrip().endswith("geodino: interrupted") for log in logs), ranks.logs()
    lines = [m for log in logs for m in STOP_LINE.findall(log)]
    why = "SIGTERM" if target == 0 else "a signal to another rank"
    assert [line[:3] for line in lines] == [(str(step), str(max_steps), why)], ranks.logs()  # rank 0 says it
    return Path(lines[0][3])


def _assert_same_training_state(a: dict, b: dict, loops: bool = False) -> None:
    """Equal weights and optimizer state, bit for bit (and Lightning's loop counters, with `loops`)."""
    assert a["global_step"] == b["global_step"]
    assert not loops or a["loops"] == b["loops"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    sa, sb = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for name, v in sa[i].items():
            assert torch.equal(v, sb[i][name]), (i, name)


@pytest.mark.slow
def test_pretrain_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tmp_path, tiny_data):
    """2-process DDP pretraining (gloo, CPU), 5 steps, SIGTERM while step 3 is about to run: to rank 1 alone (run
    a), then to rank 0 alone (run b). Every rank finishes step 3 and exits 130; the step-3 checkpoint is written
    once, whole, and is the uninterrupted run's step 3 (weights, optimizer, loop counters); the same command
    resumes it to the uninterrupted run's final weights and optimizer state, bit for bit, one log row a step."""
    from geodino.train import checkpointing as ck
    from tests.train.conftest import write_config

    def argv(name: str, *extra: str) -> list[str]:
        cfg = write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_data)
        over = ["trainer.strategy=ddp", "trainer.devices=2", "trainer.max_steps=5", "ssl.monitor.every=0"]
        return ["pretrain", "-c", str(cfg), *over, "checkpoint.export_at_end=false", *extra]

    # one run after another: more ranks than cores slow gloo down several times
    ref = Ranks(tmp_path / "ref_logs", argv("ref", "checkpoint.every_n_steps=1", "checkpoint.keep_last=0"))
    assert ref.wait() == [0, 0], ref.logs()
    ref_dir = tmp_path / "ref" / "checkpoints"
    for name, rank in {"a": 1, "b": 0}.items():  # run -> the one rank signalled
        ranks = Ranks(tmp_path / f"{name}_logs", argv(name, "checkpoint.every_n_steps=100"), gate_step=2)
        ranks.signal_one(rank)
        saved = _assert_stopped(ranks, ranks.wait(), rank, step=3, max_steps=5)
        folder = tmp_path / name / "checkpoints"
        assert saved == folder / "step_00000003.ckpt"
        assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "step_00000003.ckpt"]  # no temporaries
        assert (folder / "last.ckpt").resolve() == saved.resolve()
        ckpt = ck.load_file(saved)
        assert ckpt["geodino"]["data"]["next_step"] == 3
        _assert_same_training_state(ck.load_file(ref_dir / "step_00000003.ckpt"), ckpt, loops=True)
    # b saved what a saved (both are the uninterrupted run's step 3): resuming one of them shows both resume
    resumed = Ranks(tmp_path / "a_logs_2", argv("a", "checkpoint.every_n_steps=100"))
    assert resumed.wait() == [0, 0], resumed.logs()
    assert "Restored all states from the checkpoint at " in resumed.log(0) and saved.name in resumed.log(0)
    _assert_same_training_state(
        ck.load_file(ref_dir / "step_00000005.ckpt"), ck.load_file(tmp_path / "a" / "checkpoints" / "last.ckpt")
    )
    rows = list(csv.DictReader(open(tmp_path / "a" / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_distill_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    """2-process distillation (one student, DDP over both ranks, gloo), 3 steps: SIGTERM to rank 1 alone while
    step 2 is about to run. Both ranks finish step 2 and exit 130, rank 0 (the writer) saved step 2, and the same
    command resumes to the uninterrupted run's step-3 students and EMA, bit for bit, one log row a step."""
    import numpy as np
    from PIL import Image

    from geodino.config import save_config
    from tests.train.test_distill import _cfg

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(imgs / f"im{i}.png")

    def argv(name: str) -> list[str]:
        student = "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1}}]"
        cfg = _cfg(imgs, tmp_path / name, student, "train.max_steps=3", "train.checkpoint_every_n_steps=100")
        save_config(cfg, tmp_path / f"{name}.yaml")
        return ["distill", "-c", str(tmp_path / f"{name}.yaml")]

    ref = Ranks(tmp_path / "ref_logs", argv("ref"))
    assert ref.wait() == [0, 0], ref.logs()
    ranks = Ranks(tmp_path / "run_logs", argv("run"), gate_step=1)
    ranks.signal_one(1)
    saved = _assert_stopped(ranks, ranks.wait(), 1, step=2, max_steps=3)
    folder = tmp_path / "run" / "checkpoints"
    assert saved == folder / "step_00000002.ckpt"
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000002.ckpt"]  # no temporaries
    assert torch.load(saved, weights_only=True)["step"] == 2

    resumed = Ranks(tmp_path / "run_logs_2", argv("run"))
    assert resumed.wait() == [0, 0], resumed.logs()
    one, two = (
        torch.load(tmp_path / d / "checkpoints" / "step_00000003.ckpt", weights_only=True) for d in ("ref", "run")
    )
    for part in ("students", "students_ema"):
        for name in one[part]:
            for k, v in one[part][name].items():
                assert torch.equal(two[part][name][k], v), (part, name, k)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
