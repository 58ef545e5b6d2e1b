"""benchmarks/gpu.sh runs only on a lent GPU, where a renamed flag costs the session: it must parse, call scripts that
exist with flags they define, and refuse to run without CUDA unless --smoke (nothing here runs a benchmark)."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.benchmarks.conftest import bench_module

ROOT = Path(__file__).resolve().parents[2]
GPU_SH = ROOT / "benchmarks" / "gpu.sh"
# flags gpu.sh gives the geodino CLI (embed SRC --backbone --out --device; pretrain --config) and its own --smoke
CLI_FLAGS = {"--backbone", "--out", "--device", "--config", "--smoke"}


def _code() -> str:
    """gpu.sh without its comments (a `#` that starts a line or follows a space)."""
    return "\n".join(re.split(r"(?:^|\s)#", line, maxsplit=1)[0] for line in GPU_SH.read_text().splitlines())


def _flags(script: Path) -> set[str]:
    return {
        a.value
        for n in ast.walk(ast.parse(script.read_text()))
        if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "add_argument"
        for a in n.args
        if isinstance(a, ast.Constant) and str(a.value).startswith("--")
    }


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_sh_parses():
    p = subprocess.run(["bash", "-n", str(GPU_SH)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_gpu_sh_calls_existing_scripts_with_their_flags():
    code = _code()
    scripts = set(re.findall(r"benchmarks/([a-z_]+\.py)", code))
    assert {"backbone.py", "embed.py", "activation_checkpointing.py", "distill_teacher.py"} <= scripts
    known = set(CLI_FLAGS)
    for name in scripts:
        path = ROOT / "benchmarks" / name
        assert path.is_file(), f"gpu.sh calls benchmarks/{name}, which does not exist"
        known |= _flags(path)
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", code))
    assert used - known == set(), f"gpu.sh passes flags no script it calls defines: {sorted(used - known)}"
    # the dtypes it asks backbone.py for are among its choices
    backbone = bench_module("backbone")
    for dtypes in re.findall(r"--dtypes ([a-z0-9 -]+?)\"", code):
        assert set(dtypes.split()) <= set(backbone.DTYPES), dtypes


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_sh_without_cuda_refuses_and_points_at_smoke(tmp_path):
    """The GPU run on a machine without CUDA exits 2 naming --smoke (before any part starts)."""
    env = {**os.environ, "OUT_DIR": str(tmp_path / "out"), "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run(["bash", str(GPU_SH)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], p.stderr[-500:])
    assert "--smoke" in p.stderr and "== 1." not in p.stdout
