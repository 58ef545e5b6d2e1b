"""A run stopped after k steps and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import torch

from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer
from tests.train.standin import StandInArch, loader_factory, schedules


def run(out, max_steps, ckpt_path=None):
    torch.manual_seed(0)
    arch = StandInArch()  # same init every time (seeded)
    module = SSLModule(
        arch,
        schedules,
        loader_factory=loader_factory(seed=3),
        seed=3,
        clip_grad=0.5,
        checkpoint_dir=out / "checkpoints",
    )
    tcfg = TrainerConfig(max_steps=max_steps, accelerator="cpu", precision="32-true", loggers=[], progress_bar=False)
    trainer, _ = build_trainer(tcfg, CheckpointConfig(every_n_steps=3, keep_last=0), out)
    trainer.fit(module, ckpt_path=ckpt_path)
    return module, trainer


def test_resume_equals_uninterrupted(tmp_path):
    full, _ = run(tmp_path / "a", 6)
    # "killed" after 3 steps: only the step-3 checkpoint survives; a new process resumes from it
    run(tmp_path / "b", 3)
    ck = tmp_path / "b" / "checkpoints" / "step_00000003.ckpt"
    resumed, trainer = run(tmp_path / "b", 6, ckpt_path=str(ck))
    assert trainer.global_step == 6
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the optimizer state matches too (Adam moments and step counts)
    oa, ob = full.optimizers().optimizer.state_dict(), resumed.optimizers().optimizer.state_dict()
    for i, st in oa["state"].items():
        for name, v in st.items():
            assert torch.equal(v, ob["state"][i][name]), (i, name)
