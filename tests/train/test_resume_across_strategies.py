"""A checkpoint written by one process (or DDP) resumes under FSDP2 (`trainer.strategy=fsdp2`, which a resume may
change) and continues exactly as the uninterrupted run.

Lightning reads a full checkpoint under FSDP2 as FSDP's full optimizer state, whose integer ids are positions in the
module's parameters; `optimizer.state_dict()` numbers them in param-group order, so the moments went to other
parameters (a shape error on resume). SSLModule now writes the ids by module order (`optim.key_by_module_order`).
Each run is a subprocess of `strategy_resume_worker.py` (FSDP2 needs a process group; one rank here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("strategy_resume_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _start(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(WORKER), *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(p: subprocess.Popen, out: Path) -> dict:
    log, _ = p.communicate(timeout=600)
    assert p.returncode == 0, log[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.slow
def test_a_single_process_checkpoint_resumes_under_fsdp2(tmp_path, tiny_data) -> None:
    full = _start("auto", 3, tiny_data, tmp_path / "full.pt")
    save = _start("auto", 2, tiny_data, tmp_path / "save.pt")
    ckpt = _wait(save, tmp_path / "save.pt")["ckpt"]
    resumed = _wait(_start("fsdp2", 3, tiny_data, tmp_path / "resumed.pt", ckpt), tmp_path / "resumed.pt")
    full = _wait(full, tmp_path / "full.pt")
    assert resumed["losses"] == pytest.approx(full["losses"][2:], rel=1e-6)
    # the weights after step 3 depend on the Adam moments restored from the checkpoint
    assert resumed["state"].keys() == full["state"].keys()
    for k, v in full["state"].items():
        torch.testing.assert_close(resumed["state"][k], v, rtol=0, atol=1e-6, msg=k)


def test_module_order_ids_map_every_moment_to_its_parameter() -> None:
    """FSDP's reading of the ids (position in module.parameters() -> name) gives each parameter its own moments,
    while the param groups hold the parameters in another order; a plain optimizer loads the file unchanged."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import OptimStateKeyType

    from geodino.models.heads import DINOHead
    from geodino.train.optim import build_optimizer, key_by_module_order, param_groups

    model = torch.nn.ModuleDict({"dino_head": DINOHead(8, 16, 12, 6), "ibot_head": DINOHead(8, 10, 12, 6)})
    opt = build_optimizer(param_groups(model), fused=False)
    order = [p for g in opt.param_groups for p in g["params"]]
    assert [id(p) for p in order] != [id(p) for p in model.parameters()]  # groups are not in module order
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    state = key_by_module_order(opt.state_dict(), opt, model)
    by_name = FSDP.rekey_optim_state_dict(state, OptimStateKeyType.PARAM_NAME, model)
    for name, p in model.named_parameters():
        torch.testing.assert_close(by_name["state"][name]["exp_avg"], opt.state[p]["exp_avg"], msg=name)
    again = build_optimizer(param_groups(model), fused=False)
    again.load_state_dict(state)
    for p, q in zip(order, [p for g in again.param_groups for p in g["params"]]):
        torch.testing.assert_close(again.state[q]["exp_avg_sq"], opt.state[p]["exp_avg_sq"])
