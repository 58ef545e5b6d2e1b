"""A few SSL steps of the tiny ViT in one process, as a subprocess of tests/train/test_resume_across_strategies.py:

    python tests/train/strategy_resume_worker.py STRATEGY STEPS DATA OUT [CKPT]

trains to STEPS with `trainer.strategy=STRATEGY` (resuming from CKPT when given) and saves the step losses, the
final weights (gathered under FSDP2) and the last checkpoint's path to OUT. One process, so FSDP2 runs on a
one-rank gloo group that Lightning sets up and this process leaves with `os._exit`.
"""

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


def main(strategy: str, steps: str, data: str, out: str, ckpt: str | None = None) -> None:
    folder = Path(out).parent
    tag = Path(out).stem
    cfg = load_config(
        PretrainConfig,
        write_config(folder / f"{tag}.yaml", folder / f"run_{tag}", Path(data)),
        [
            "trainer.max_steps=3",
            "ssl.student.drop_path_rate=0.0",
            "ssl.student.overrides.pos_embed_rope_rescale_coords=null",
            "ssl.monitor.every=0",
            "trainer.loggers=[]",
        ],
    )
    losses: list[float] = []

    class Spy(SSLModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            losses.append(float(loss))
            return loss

    torch.manual_seed(0)
    arch = build_arch(cfg)
    tcfg = TrainerConfig(
        max_steps=int(steps),
        accelerator="cpu",
        strategy=strategy,
        precision="32-true",
        loggers=[],
        progress_bar=False,
        fsdp_param_dtype="float32",
    )
    module = Spy(
        arch,
        arch.schedules.at,
        loader_factory=loader_factory(cfg),
        seed=0,
        clip_grad=cfg.ssl.optim.clip_grad,
        fsdp=fsdp_settings(tcfg),
        checkpoint_dir=Path(cfg.output_dir) / "checkpoints",
        checkpoint_meta=lambda s: {"backbone": dict(arch.student["backbone"].config)},
    )
    trainer, cb = build_trainer(tcfg, CheckpointConfig(every_n_steps=100), Path(cfg.output_dir))
    trainer.fit(module, ckpt_path=ckpt)
    if strategy == "fsdp2":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(arch, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = arch.state_dict()
    state = {k: v.detach().cpu() for k, v in state.items()}
    torch.save({"losses": losses, "state": state, "ckpt": str(cb.last_path)}, out)
    sys.stdout.flush()
    os._exit(0)  # gloo (FSDP2's one-rank group) can abort at interpreter exit


if __name__ == "__main__":
    main(*sys.argv[1:])
