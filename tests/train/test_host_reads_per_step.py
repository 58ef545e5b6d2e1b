"""How often a pretraining step through Lightning reads device values on the host (each read waits for the GPU).

On CPU a read shows up as the aten op `_local_scalar_dense` (`.item()`, `float(t)`, `bool(t)`) or as a
`tolist`/`numpy`/`cpu` call (a whole tensor at once, what `host_floats` does). A step that does not log reads only
what geodino needs (the NaN guard: one value); a logging step adds one copy of the whole logged row. Before, the
progress bar and the loggers read every logged value on its own: 7 reads a step, 20 on logging steps, for the
stand-in's three loss terms. metrics.csv keeps its rows and columns; the schedule values (Python floats) are
written exactly now, no longer through a float32 tensor (0.001, not 0.0010000000474974513).
"""

from __future__ import annotations

import collections
import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from geodino.train.module import CheckpointConfig, RunProgressBar, SSLModule, TrainerConfig, build_trainer
from tests.train.standin import StandInArch, loader_factory, schedules

NAN_GUARD_READS = 1  # the NaN guard's `bool(isfinite(loss))`, every step by design
ROW_COPIES = 1  # a logging step reads its whole row in one copy
MAX_STEPS, EVERY = 7, 3
LOGGED = [0, 2, 5]  # step 0, then Lightning's rule: global step + 1 a multiple of log_every_n_steps (not step 6)
COLUMNS = [
    "dino_global_loss",
    "epoch",
    "grad_norm/backbone",
    "grad_norm/dino_head",
    "grad_norm/ibot_head",
    "ibot_loss",
    "loss",
    "monitor/probe",
    "sched/last_layer_lr",
    "sched/lr",
    "sched/momentum",
    "sched/weight_decay",
    "step",
]


class _Reads:
    """Host reads per global step, counted between a batch's start and the next one's (its logging included)."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.per_step: collections.Counter[int] = collections.Counter()

    def hit(self) -> None:
        if self.step is not None:
            self.per_step[self.step] += 1


class _ScalarReads(TorchDispatchMode):
    def __init__(self, reads: _Reads) -> None:
        super().__init__()
        self.reads = reads

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads.hit()
        return func(*args, **(kwargs or {}))


class _TensorReads(TorchFunctionMode):
    def __init__(self, reads: _Reads) -> None:
        super().__init__()
        self.reads = reads

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", "") in ("tolist", "numpy", "cpu"):
            self.reads.hit()
        return func(*args, **(kwargs or {}))


class _StepMarks(L.Callback):
    def __init__(self, reads: _Reads) -> None:
        self.reads = reads

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.reads.step = trainer.global_step

    def on_train_epoch_end(self, *args: Any) -> None:
        self.reads.step = None  # the end of the run (checkpoint, teardown) is no step


class _ProbedArch(StandInArch):
    """The stand-in, plus a value logged at step 0 only (as the monitors, every `monitor.every` steps)."""

    def forward(self, batch: dict[str, Any], iteration: int) -> tuple[torch.Tensor, dict[str, Any]]:
        loss, logs = super().forward(batch, iteration)
        if iteration == 0:
            logs["monitor/probe"] = 0.25
        return loss, logs


def _fit(tmp: Path, reads: _Reads | None = None) -> tuple[SSLModule, L.Trainer]:
    torch.manual_seed(0)
    module = SSLModule(_ProbedArch(), schedules, loader_factory=loader_factory(), checkpoint_dir=tmp / "checkpoints")
    tcfg = TrainerConfig(
        max_steps=MAX_STEPS,
        accelerator="cpu",
        precision="32-true",
        loggers=["csv"],
        progress_bar=True,
        log_every_n_steps=EVERY,
    )
    trainer, _ = build_trainer(tcfg, CheckpointConfig(every_n_steps=100, keep_last=2), tmp)
    if reads is None:
        trainer.fit(module)
        return module, trainer
    trainer.callbacks.append(_StepMarks(reads))
    with _TensorReads(reads), _ScalarReads(reads):
        trainer.fit(module)
    return module, trainer


def test_a_step_reads_the_nan_guard_and_a_logging_step_one_copy_more(tmp_path) -> None:
    reads = _Reads()
    _fit(tmp_path, reads)
    counts = [reads.per_step[s] for s in range(MAX_STEPS)]
    expected = [NAN_GUARD_READS + (ROW_COPIES if s in LOGGED else 0) for s in range(MAX_STEPS)]
    assert counts == expected, f"host reads per step {counts}, expected {expected} (logging steps {LOGGED})"


def test_metrics_csv_keeps_its_rows_and_the_bar_its_loss_terms(tmp_path) -> None:
    module, trainer = _fit(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == LOGGED
    assert sorted(rows[0]) == COLUMNS and all(sorted(r) == COLUMNS for r in rows)
    assert all(r["epoch"] == "0" for r in rows)
    # a value logged at step 0 only stays in the later rows (Lightning's on_step results kept it)
    assert [r["monitor/probe"] for r in rows] == ["0.25"] * len(LOGGED)
    assert float(rows[-1]["sched/lr"]) == 1e-3 and float(rows[-1]["sched/momentum"]) == 0.9
    for r in rows:  # the stand-in's loss is the sum of its two terms
        assert abs(float(r["loss"]) - float(r["dino_global_loss"]) - float(r["ibot_loss"])) < 1e-5
    # the progress bar shows the loss terms of the last logged row (step 5), as floats already on the host
    (bar,) = [c for c in trainer.callbacks if isinstance(c, RunProgressBar)]
    shown = bar.get_metrics(trainer, module)
    assert {k: shown[k] for k in ("loss", "dino_global_loss", "ibot_loss")} == {
        k: float(rows[-1][k]) for k in ("loss", "dino_global_loss", "ibot_loss")
    }
