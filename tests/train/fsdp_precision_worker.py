"""One FSDP2 pretraining step of the tiny ViT (Gram stage on) with the default `trainer.fsdp_*` dtypes, in one
process, as a subprocess of tests/train/test_fsdp2_precision_policy.py: `python ... DATA OUT` saves the
MixedPrecisionPolicy of every sharded backbone, the dtypes its first MLP layer computed in, and the dtypes of the
parameters and gradients the optimizer sees."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from geodino.config import load_config
from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer, fsdp_settings
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_build import build_arch, loader_factory
from tests.train.conftest import write_config

PARTS = ("student", "teacher", "gram_teacher")


def main(data: str, out: str) -> None:
    folder = Path(out).parent
    over = ["trainer.max_steps=1", "ssl.monitor.every=1", "trainer.loggers=[]", "ssl.gram.use_loss=true"]
    cfg = load_config(PretrainConfig, write_config(folder / "c.yaml", folder / "run", Path(data)), over)
    seen: dict = {}

    class Spy(SSLModule):
        def configure_model(self) -> None:
            super().configure_model()
            for part in PARTS:
                for name, mod in getattr(self.arch, part).items():
                    policy = mod._get_fsdp_state()._mp_policy
                    seen[f"{part}.{name}"] = (str(policy.param_dtype), str(policy.reduce_dtype))
                fc1 = getattr(self.arch, part)["backbone"].blocks[0].mlp.fc1

                def hook(m, i, o, part=part) -> None:
                    seen.setdefault(f"{part}.compute", (str(m.weight.dtype), str(o.dtype)))

                fc1.register_forward_hook(hook)

        def on_before_optimizer_step(self, optimizer) -> None:
            super().on_before_optimizer_step(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            seen["optimizer"] = sorted({str(p.dtype) for p in params} | {str(p.grad.dtype) for p in params})

    torch.manual_seed(0)
    arch = build_arch(cfg)
    tcfg = TrainerConfig(max_steps=1, accelerator="cpu", strategy="fsdp2", loggers=[], progress_bar=False)
    module = Spy(
        arch,
        arch.schedules.at,
        loader_factory=loader_factory(cfg),
        seed=0,
        fsdp=fsdp_settings(tcfg),
        checkpoint_dir=Path(cfg.output_dir) / "checkpoints",
    )
    trainer, _ = build_trainer(tcfg, CheckpointConfig(every_n_steps=100), Path(cfg.output_dir))
    trainer.fit(module)
    torch.save(seen, out)
    sys.stdout.flush()
    os._exit(0)  # gloo (FSDP2's one-rank group) can abort at interpreter exit


if __name__ == "__main__":
    main(*sys.argv[1:3])
