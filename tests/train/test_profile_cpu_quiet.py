"""`trainer.profile_steps` on a CPU-only machine profiles host ops only and prints none of kineto's C++ lines: with
CPU activities alone it still looked for a GPU and printed "ERROR: ... gpuGetDeviceCount failed with code 35" (and
its USDT profiler_start/stop lines) in the middle of the training log."""

from __future__ import annotations

import os
import subprocess
import sys

from torch.profiler import ProfilerActivity

from geodino.train.profiling import KINETO_QUIET, activities


def test_cpu_activities_have_no_cuda_and_quiet_kineto_unless_the_user_set_a_level(
    monkeypatch,
) -> None:
    monkeypatch.delenv("KINETO_LOG_LEVEL", raising=False)
    assert activities(on_cuda=True) == [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    assert "KINETO_LOG_LEVEL" not in os.environ  # a GPU run keeps kineto's own messages (CUPTI permissions ...)
    assert activities(on_cuda=False) == [ProfilerActivity.CPU]
    assert os.environ["KINETO_LOG_LEVEL"] == KINETO_QUIET
    monkeypatch.setenv("KINETO_LOG_LEVEL", "2")
    activities(on_cuda=False)
    assert os.environ["KINETO_LOG_LEVEL"] == "2"  # the user's choice wins


_PROFILE_TWO_STEPS = """
import sys, torch
from types import SimpleNamespace
from geodino.train.profiling import StepProfiler
prof = StepProfiler(0, 1, __import__("pathlib").Path(sys.argv[1]))
trainer, module = SimpleNamespace(global_step=0, is_global_zero=True), SimpleNamespace(device=torch.device("cpu"))
for step in (0, 1):
    trainer.global_step = step
    prof.on_train_batch_start(trainer, module, None, step)
    torch.randn(64, 64) @ torch.randn(64, 64)
    prof.on_train_batch_end(trainer, module, None, None, step)
"""


def test_a_cpu_profile_prints_no_kineto_line(tmp_path) -> None:
    # a fresh process: kineto reads its level once, at the process's first profile
    env = {k: v for k, v in os.environ.items() if k != "KINETO_LOG_LEVEL"} | {"CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", _PROFILE_TWO_STEPS, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "geodino: profiled steps 0-1" in proc.stderr
    kineto = [ln for ln in proc.stderr.splitlines() if "gpuGetDeviceCount" in ln or ln.startswith(("USDT:", "ERROR:"))]
    assert not kineto
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "steps_0-1.trace.json",
        "steps_0-1.txt",
    ]
