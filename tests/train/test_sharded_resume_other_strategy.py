"""A sharded FSDP2 checkpoint folder (`trainer.strategy=fsdp2 checkpoint.sharded=true`) resumes under another
strategy (here the default, auto on one CPU process) exactly: it stopped with a raw IsADirectoryError (exit 1)
because Lightning's one-file reader opened the folder. The folder is now gathered and its optimizer state, keyed by
parameter name in DCP, re-keyed for a plain optimizer (`geodino.train.sharded_resume`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from geodino.cli import main; sys.exit(main())"]


def _cli(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [*CLI, "pretrain", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_dcp_optimizer_state_loads_into_a_plain_optimizer() -> None:
    """Name-keyed moments reach their own parameters though the groups list them out of module order."""
    from geodino.train.sharded_resume import plain_optimizer_state

    model = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 4), "b": torch.nn.Linear(4, 2)})
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [{"params": [model.b.bias, model.a.weight]}, {"params": [model.a.bias, model.b.weight]}]
    opt = torch.optim.AdamW(groups, lr=0.1)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    plain = opt.state_dict()
    order = [p for g in opt.param_groups for p in g["params"]]
    named = {  # as DCP's get_optimizer_state_dict writes it: names instead of ids
        "state": {names[id(order[i])]: v for i, v in plain["state"].items()},
        "param_groups": [{**g, "params": [names[id(order[i])] for i in g["params"]]} for g in plain["param_groups"]],
    }
    again = torch.optim.AdamW(
        [{"params": [model.b.bias, model.a.weight]}, {"params": [model.a.bias, model.b.weight]}], lr=0.1
    )
    again.load_state_dict(plain_optimizer_state(named))
    for p in model.parameters():
        torch.testing.assert_close(again.state[p]["exp_avg"], opt.state[p]["exp_avg"], rtol=0, atol=0)


@pytest.mark.slow
def test_a_sharded_folder_resumes_exactly_under_the_default_strategy(tmp_path, tiny_data) -> None:
    from geodino.models.checkpoints.files import load_file

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data, "")
    common = ["-c", cfg, "ssl.monitor.every=0", "trainer.loggers=[]"]
    full = _cli(*common, "trainer.strategy=fsdp2", "checkpoint.sharded=true", "trainer.fsdp_param_dtype=float32")
    assert full.returncode == 0, full.stderr[-3000:]
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "step_00000001.ckpt").is_dir() and (ckpts / "step_00000002.ckpt").is_dir()
    reference = load_file(ckpts / "step_00000002.ckpt")["state_dict"]

    resumed = _cli(*common, f"checkpoint.resume={ckpts / 'step_00000001.ckpt'}")  # strategy auto (the default)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "IsADirectoryError" not in resumed.stderr
    again = load_file(ckpts / "step_00000002.ckpt")
    assert again["global_step"] == 2 and (ckpts / "step_00000002.ckpt").is_file()  # written by the resumed run
    state = again["state_dict"]
    assert state.keys() == reference.keys()
    # step 2's update used the Adam moments of step 1: equal weights need the moments restored to their parameters
    for k, v in reference.items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0, msg=k)
