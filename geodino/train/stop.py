"""Stop a training run at a step boundary on Ctrl-C or SIGTERM, after saving a checkpoint of that step.

A scheduler's SIGTERM (preemption, `scancel`, a time limit) or a Ctrl-C used to end a run at once: it lost every
step since the last periodic checkpoint (up to `every_n_steps`). `StopRequest` turns the first SIGINT or SIGTERM
into a request: the run finishes the step it is in, saves a checkpoint of it (the same file a periodic save
writes, so the resume is as exact) and ends with `geodino: interrupted` (exit code 130). A second signal stops
at once (KeyboardInterrupt). A request that arrives during the run's last step is not a stop: the run is
complete, so it ends as any complete run does (its export, exit code 0), saying so. In a multi-process run every
rank agrees on the step (`agreed`, an all-reduce per step), so the save, a collective, starts on every rank at
the same step. DataLoader workers ignore both signals (`quiet_worker`): a terminal's Ctrl-C reaches its whole
process group, and a worker that died of it broke the batch the last step still needed. They still exit with
their parent, which they watch.

On SLURM with `trainer.slurm_auto_requeue` (pretraining) or `train.slurm_auto_requeue` (distillation), SLURM's
warning signal (`sbatch --signal=SIGUSR1@120`) is one more such request (`REQUEUE_SIGNAL`, taken over only where
`stop_signals` says so): the step finishes, is saved, and rank 0 requeues the job (`end_stopped_run`,
`requeue_slurm_job`), which resumes from that checkpoint. In pretraining, Lightning's own SIGUSR1 handler is left
off: it saved `hpc_ckpt_N.ckpt` from inside the signal handler, mid-step, non-atomically, into the run folder (never
pruned), kept training, and a requeued job with no step checkpoint yet resumed from that mid-step state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from geodino.progress import line_start  # a new line only after an open bar (none: no blank line)

__all__ = ["REQUEUE_SIGNAL", "SIGNALS", "StopRequest", "end_stopped_run", "on_slurm", "quiet_worker",
           "requeue_outside_steps", "requeue_slurm_job", "say_completed", "say_stopped", "stop_signals"]  # fmt: skip

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REQUEUE_SIGNAL = signal.SIGUSR1  # SLURM's warning before the time limit (sbatch --signal=SIGUSR1@120)


class StopRequest:
    """The first of `signals` (SIGINT, SIGTERM; and SIGUSR1 for a SLURM requeue) received while installed, by name
    (`signal`), or None; a second one stops at once."""

    def __init__(self, signals: tuple[signal.Signals, ...] = SIGNALS) -> None:
        self.signal: str | None = None
        self.signals = tuple(signals)
        self._previous: dict[int, Any] = {}

    def install(self) -> StopRequest:
        """Take over its signals (only the main thread may; elsewhere signals keep their handlers)."""
        if threading.current_thread() is threading.main_thread() and not self._previous:
            for sig in self.signals:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Give its signals back the handlers they had before `install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # the second one stops at once: `geodino: interrupted`, exit code 130
            self.restore()
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        print(
            f"{line_start()}geodino: {self.signal} received: stopping after this step and saving a checkpoint of it "
            "(send it again to stop at once, losing the steps since the last checkpoint)",
            file=sys.stderr,
            flush=True,
        )

    def agreed(self, any_rank: Callable[[bool], bool] | None = None) -> bool:
        """Whether to stop after this step: this process was signalled, or (with `any_rank`, a reduction over the
        ranks) any rank was, so that every rank stops at the same step."""
        wanted = self.signal is not None
        return bool(any_rank(wanted)) if any_rank is not None else wanted


def on_slurm() -> bool:
    """Whether this process is a SLURM task, decided as pretraining's Trainer does (Lightning's
    `SLURMEnvironment.detect`: SLURM_NTASKS set, in a job not named `bash` or `interactive`, whose processes are
    started by hand)."""
    if "SLURM_NTASKS" not in os.environ:  # detect() needs it: Lightning's import (~5 s of CPU) is skipped off SLURM
        return False
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


def stop_signals(slurm_auto_requeue: bool) -> tuple[signal.Signals, ...]:
    """The signals a run's `StopRequest` takes over: SIGINT and SIGTERM, and SLURM's warning signal (SIGUSR1) when
    the run's `slurm_auto_requeue` switch is on and it runs on SLURM (elsewhere SIGUSR1 keeps its handler)."""
    return SIGNALS + ((REQUEUE_SIGNAL,) if slurm_auto_requeue and on_slurm() else ())


def quiet_worker() -> None:
    """In a DataLoader worker: leave SIGINT and SIGTERM to the main process, which stops the run cleanly."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def say_stopped(step: int, max_steps: int, signal_name: str | None, saved: Any) -> None:
    """The line a run stopped by a signal prints (on rank 0) before `geodino: interrupted`: where it stopped, what
    it saved, and how to go on."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    what = f"saved {saved}" if saved is not None else "nothing to save before the first step"
    print(
        f"geodino: stopped after step {step} of {max_steps} ({signal_name or 'a signal to another rank'}); {what}; "
        "run the same command to resume",
        file=sys.stderr,
        flush=True,
    )


def end_stopped_run(step: int, max_steps: int, signal_name: str | None, saved: Any, rank_zero: bool) -> None:
    """What a run stopped by a signal does before `geodino: interrupted`: say where it stopped (`say_stopped`) and,
    when the signal was SLURM's warning (`REQUEUE_SIGNAL`), requeue the job from global rank 0 only (one
    `scontrol requeue` per job). Every rank calls it once the step's checkpoint is complete."""
    say_stopped(step, max_steps, signal_name, saved)
    if signal_name == REQUEUE_SIGNAL.name and rank_zero:
        requeue_slurm_job()


def say_completed(max_steps: int, signal_name: str) -> None:
    """The line a run prints when its stop request came during the last step: nothing is left to stop, so the
    run finishes as a complete run (export, curves) instead of leaving that for a rerun."""
    print(
        f"geodino: {signal_name} came during the last step ({max_steps} of {max_steps}): the run is complete, "
        "finishing it (export, curves) instead of stopping",
        file=sys.stderr,
        flush=True,
    )


def requeue_slurm_job(resumes: str = "the checkpoint just saved") -> str:
    """Requeue this SLURM job (`scontrol requeue`, an array task as JOBID_TASKID) and say so in one line (on stderr);
    the requeued job runs the same command, which resumes from the newest checkpoint (`resumes` says which).
    Returns the job id."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ.get("SLURM_JOB_ID", "")
    try:
        code = subprocess.call(["scontrol", "requeue", job]) if job else None
        why = "no SLURM_JOB_ID" if code is None else f"scontrol exit code {code}"
    except OSError as exc:
        code, why = None, f"scontrol: {exc.strerror or exc}"
    if code == 0:
        print(f"geodino: requeued SLURM job {job}; it resumes from {resumes}", file=sys.stderr)
    else:
        print(
            f"geodino: could not requeue SLURM job {job or '?'} ({why}); submit the same command again to resume",
            file=sys.stderr,
        )
    sys.stderr.flush()
    return job


@contextmanager
def requeue_outside_steps(slurm_auto_requeue: bool) -> Iterator[None]:
    """While a run is not in its training steps (start-up: teacher and data loading, a distillation's heads
    warm-up; the end: export), SLURM's warning signal requeues the job at once: nothing can be saved there. The
    run's `StopRequest` takes the signal over for the steps (and hands it back after them). Without this the
    signal's default action ended the process (exit 138) and the job was not requeued, although a 7B teacher's load
    or a heads warm-up can outlast the warning's lead time. Only on SLURM with `slurm_auto_requeue`."""
    if not (slurm_auto_requeue and threading.current_thread() is threading.main_thread() and on_slurm()):
        yield
        return
    previous = signal.getsignal(REQUEUE_SIGNAL)
    signal.signal(REQUEUE_SIGNAL, _requeue_now)
    try:
        yield
    finally:
        signal.signal(REQUEUE_SIGNAL, previous if previous is not None else signal.SIG_DFL)


def _requeue_now(signum: int, frame: Any) -> None:
    """SIGUSR1 outside the steps: say so, requeue from global rank 0 (one `scontrol requeue` per job), stop."""
    signal.signal(REQUEUE_SIGNAL, signal.SIG_IGN)  # once per process
    print(
        f"{line_start()}geodino: {REQUEUE_SIGNAL.name} (SLURM's time-limit warning) came outside the training "
        "steps (start-up, heads warm-up or export): nothing to save there; requeueing the job",
        file=sys.stderr,
        flush=True,
    )
    if os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) == "0":
        requeue_slurm_job("the newest checkpoint (the start again if none was saved yet)")
    raise KeyboardInterrupt
