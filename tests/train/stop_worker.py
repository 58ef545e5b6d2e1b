"""One rank of a multi-process `geodino pretrain` or `geodino distill`, held at a step so a test can signal it.

Used by tests/train/test_stop_distributed.py as a subprocess: `python tests/train/stop_worker.py ARGS...` runs
`geodino ARGS...` (the CLI, exit code included) in a process the test launched with the rank's environment
(MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, as torchrun or Lightning set it for a rank). With
GEODINO_TEST_GATE=DIR and GEODINO_TEST_GATE_STEP=S, every rank stops before running step S (0-based), writes
DIR/ready_RANK and waits for DIR/go: the test signals a rank of its choice in between, so the step the run stops
after is known (S + 1). Without them the command runs as is (the resume).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

WAIT_S = 120  # the longest a rank waits for the test's go (a test that died must not leave ranks behind)


def hold(rank: int) -> None:
    """Say this rank reached the gate and wait for the test's go (signals are handled while waiting)."""
    gate = Path(os.environ["GEODINO_TEST_GATE"])
    (gate / f"ready_{rank}").write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_S
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"rank {rank}: no go from the test in {WAIT_S} s")
        time.sleep(0.02)


def install_gate(command: str) -> None:
    """Hold every rank before step GEODINO_TEST_GATE_STEP of `geodino pretrain` (a Trainer callback) or `geodino
    distill` (its step function)."""
    at = int(os.environ["GEODINO_TEST_GATE_STEP"])
    if command == "distill":  # without Lightning, which distill does not import (seconds of start-up)
        from geodino.train.distill import loop

        step = loop.train_step

        def gated_step(run: Any, i: int, batch: Any) -> Any:
            if i == at:
                hold(run.rank)
            return step(run, i, batch)

        loop.train_step = gated_step
        return

    import lightning as L

    import geodino.train.module as module_lib

    class Gate(L.Callback):
        def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
            if trainer.global_step == at:
                hold(trainer.global_rank)

    build = module_lib.build_trainer

    def build_with_gate(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        trainer, cb = build(*args, **kwargs)
        trainer.callbacks.append(Gate())
        return trainer, cb

    module_lib.build_trainer = build_with_gate


if __name__ == "__main__":
    if os.environ.get("GEODINO_TEST_GATE"):
        install_gate(sys.argv[1])
    from geodino.cli import main

    sys.exit(main(sys.argv[1:]))
