"""FSDP2's mixed precision as the official recipe (`MixedPrecisionPolicy(param bf16, reduce fp32)`), with the default
`trainer.fsdp_param_dtype` / `fsdp_reduce_dtype`: every sharded module of the student, the EMA teacher and the Gram
teacher carries the policy and computes in bfloat16, while the optimizer keeps float32 weights and gradients. On CPU
(bf16 matmuls work there), one process, as a subprocess of `fsdp_precision_worker.py`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("fsdp_precision_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fsdp2_shards_every_module_with_bf16_params_and_fp32_reduce(tmp_path, tiny_data) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "seen.pt"
    p = subprocess.run(
        [sys.executable, str(WORKER), str(tiny_data), str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    seen = torch.load(out, weights_only=True)
    modules = [f"{part}.{name}" for part in ("student", "teacher") for name in ("backbone", "dino_head", "ibot_head")]
    for key in [*modules, "gram_teacher.backbone"]:
        assert seen[key] == ("torch.bfloat16", "torch.float32"), key
    for part in ("student", "teacher", "gram_teacher"):
        assert seen[f"{part}.compute"] == ("torch.bfloat16", "torch.bfloat16"), part
    assert seen["optimizer"] == ["torch.float32"]
