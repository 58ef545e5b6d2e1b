"""`trainer.profile_steps`: a torch.profiler capture of a few training steps and the numbers that say what bounds them.

A small ViT on a GPU can be bound by the host (Python, dispatch, kernel launches, syncs) rather than by its matrix
products. Four numbers per profiled step tell the two apart at a glance: wall seconds, the summed device-kernel
time over the wall time (device busy), the kernel launches and the host syncs (every `.item()` / `bool()` of a
device tensor, and explicit stream / device synchronisations). They are printed and written beside a Chrome trace
(open it in https://ui.perfetto.dev) and the profiler's table of the most expensive ops.

Hand-written rather than Lightning's `profiler="pytorch"`: that one profiles every hook of the whole run (huge
traces, a slow run) and reports none of the four numbers; this captures only the chosen steps, on rank 0.

A range a resumed run has already passed is a `UserWarning` (`warnings.warn`; the command line shows it as one line
"geodino: warning: ...").
"""

from __future__ import annotations

import os
import re
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from geodino.errors import ConfigError

# CUDA runtime / driver calls that launch a kernel, and the ones that make the host wait for the device
LAUNCH = re.compile(r"^(cuda|cu)LaunchKernel|^cudaLaunchCooperativeKernel|^cudaGraphLaunch")
SYNC = re.compile(r"^(cudaStreamSynchronize|cudaDeviceSynchronize|cudaEventSynchronize|cuStreamSynchronize)$")
HOST_READ = "aten::_local_scalar_dense"  # a device tensor read by the host: .item(), bool(), float()


def parse_steps(spec: str, max_steps: int, key: str = "trainer.profile_steps") -> tuple[int, int] | None:
    """'A-B' -> (A, B), the first and last global step profiled (inclusive); '' -> None (off)."""
    spec = str(spec).strip()
    if not spec:
        return None
    m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", spec)
    if m is None:
        raise ConfigError(f"{key}={spec!r} is not a step range; write FIRST-LAST, e.g. {key}=20-24, or '' for off")
    first, last = int(m[1]), int(m[2])
    if last < first:
        raise ConfigError(f"{key}={spec!r}: the last step {last} comes before the first {first}; write e.g. 20-24")
    if last >= max_steps:
        raise ConfigError(
            f"{key}={spec!r}: step {last} is past the run's last step {max_steps - 1} (trainer.max_steps={max_steps}); "
            "profile steps inside the run"
        )
    return first, last


@dataclass(frozen=True)
class StepProfile:
    """What the profiled steps did, per step (device figures are None on a CPU run)."""

    steps: int
    wall_s: float  # wall seconds per step
    ops: float  # aten ops dispatched per step (nested ops included)
    host_reads: float  # device tensors read by the host per step (on a GPU each one waits for the device)
    launches: float | None  # kernel launches per step
    syncs: float | None  # stream / device / event synchronisations per step (each host read makes one)
    device_busy: float | None  # summed kernel time / wall time (streams may overlap, so it can exceed 1)

    def line(self) -> str:
        s = f"{self.wall_s:.3f} s/step, {self.ops:,.0f} aten ops and {self.host_reads:g} host reads of tensors per step"
        if self.device_busy is not None:
            s += (
                f"; device busy {self.device_busy:.0%} of the wall time, {self.launches:,.0f} kernel launches and "
                f"{self.syncs:g} synchronisations (host reads included) per step"
            )
        return s


def summarize(events: Iterable[tuple[str, bool, float]], steps: int, wall_s: float, device: bool) -> StepProfile:
    """A `StepProfile` from (name, is_device_kernel, duration_us) events over `steps` steps lasting `wall_s` s."""
    ops = reads = launches = syncs = 0
    kernel_us = 0.0
    for name, on_device, us in events:
        if on_device:
            kernel_us += us
        elif name == HOST_READ:
            reads += 1
            ops += 1
        elif name.startswith("aten::"):
            ops += 1
        elif LAUNCH.match(name):
            launches += 1
        elif SYNC.match(name):
            syncs += 1
    n = max(steps, 1)
    return StepProfile(
        steps=steps,
        wall_s=wall_s / n,
        ops=ops / n,
        host_reads=reads / n,
        launches=launches / n if device else None,
        syncs=syncs / n if device else None,
        device_busy=kernel_us / 1e6 / wall_s if device and wall_s > 0 else None,
    )


def _events(prof: Any) -> Iterable[tuple[str, bool, float]]:
    """(name, is a device kernel, duration in us) of every event a torch.profiler run recorded."""
    from torch.autograd import DeviceType

    for e in prof.events():
        # the event's own interval: a device kernel's `device_time_total` is 0 (only host ops carry kernel lists)
        yield e.name, e.device_type != DeviceType.CPU, float(e.time_range.end - e.time_range.start)


class StepProfiler(L.Callback):
    """Profiles global steps `first`..`last` (inclusive) on rank 0 and writes the trace and summary into `folder`."""

    def __init__(self, first: int, last: int, folder: Path) -> None:
        self.first, self.last, self.folder = first, last, Path(folder)
        self._prof: Any = None
        self._t0 = 0.0
        self._steps = 0
        self._start = first  # the first step actually profiled (later than `first` when a resume started past it)
        self.done = False
        self.result: StepProfile | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero and trainer.global_step > self.last:  # a resumed run already past the range
            self.done = True
            # stacklevel 1 (this file): Lightning calls this hook, and Lightning's warnings.formatwarning shows a
            # warning attributed to its own files as "path:line: message", not the CLI's "geodino: warning: ..."
            warnings.warn(
                f"trainer.profile_steps={self.first}-{self.last} lies before step "
                f"{trainer.global_step}, where this run resumes; nothing is profiled (pick later steps)",
                stacklevel=1,
            )

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or self.done:
            return
        if self._prof is None and self.first <= step <= self.last:
            from torch.profiler import profile

            _sync(pl_module)
            self._prof = profile(activities=activities(_on_cuda(pl_module)), record_shapes=False, with_stack=False)
            self._prof.__enter__()
            self._t0, self._steps, self._start = time.perf_counter(), 0, step

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._prof is None:
            return
        self._steps += 1
        if self._start + self._steps - 1 >= self.last:
            self._finish(pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._prof is not None:  # the run ended inside the range
            self._finish(pl_module)

    def _finish(self, pl_module: Any) -> None:
        from geodino.io import atomic_path

        _sync(pl_module)
        wall = time.perf_counter() - self._t0
        prof, self._prof, self.done = self._prof, None, True
        prof.__exit__(None, None, None)
        device = _on_cuda(pl_module)
        self.result = summarize(_events(prof), self._steps, wall, device)
        a, b = self._start, self._start + self._steps - 1
        stem = self.folder / f"steps_{a}-{b}"
        with atomic_path(stem.with_suffix(".trace.json")) as tmp:
            prof.export_chrome_trace(str(tmp))
        sort = "self_cuda_time_total" if device else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=60)
        with atomic_path(stem.with_suffix(".txt")) as tmp:
            tmp.write_text(f"profiled steps {a}-{b}: {self.result.line()}\n\n{table}\n")
        print(
            f"geodino: profiled steps {a}-{b}: {self.result.line()}; trace {stem.with_suffix('.trace.json')} (open in "
            f"https://ui.perfetto.dev), top ops {stem.with_suffix('.txt')}",
            file=sys.stderr,
        )


KINETO_QUIET = "6"
"""A KINETO_LOG_LEVEL above kineto's last level (USDT, 5): none of its C++ log lines."""


def activities(on_cuda: bool) -> list[Any]:
    """What the profiler records: host ops, and on a GPU its kernels. A CPU-only run also quiets kineto
    (KINETO_LOG_LEVEL, read at the process's first profile; a level the user set wins): with CPU activities alone it
    still looked for a GPU and printed "ERROR: ... gpuGetDeviceCount failed with code 35" and profiler_start/stop."""
    from torch.profiler import ProfilerActivity

    if on_cuda:
        return [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    os.environ.setdefault("KINETO_LOG_LEVEL", KINETO_QUIET)
    return [ProfilerActivity.CPU]


def _on_cuda(pl_module: Any) -> bool:
    return getattr(getattr(pl_module, "device", None), "type", "cpu") == "cuda"


def _sync(pl_module: Any) -> None:
    if _on_cuda(pl_module):
        torch.cuda.synchronize(pl_module.device)


def callback(spec: str, max_steps: int, folder: Path) -> StepProfiler | None:
    """The callback for `trainer.profile_steps` (None when the spec is empty)."""
    steps = parse_steps(spec, max_steps)
    return None if steps is None else StepProfiler(steps[0], steps[1], folder)
