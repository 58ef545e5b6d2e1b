"""Run a few SSL steps of the tiny ViT on 1 process or 2 (DDP / FSDP2, gloo on CPU) and save what came out.

Used by tests/train/test_distributed.py as a subprocess: `python tests/train/dist_worker.py MODES DATA OUT_DIR`
runs each of the comma-separated MODES in turn (all of one world size: `single` alone, or 2-process modes) in the
same processes and process group, saving OUT_DIR/MODE.pt for each: one launch (Python, torch and Lightning started
once per rank) serves every 2-process mode. Every mode trains on the same global batch of 4 images per step: one
process reads it whole; with 2 processes rank r takes its half (crop-major rows r·2..r·2+1 of every crop, and its
masks), so DDP/FSDP2 must reproduce the single-process run (Sinkhorn-Knopp sums and distributed KoLeo reduce over
ranks).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from geodino.config import load_config, to_dict
from geodino.data.masking import collate_masks
from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer, fsdp_settings
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_build import build_arch, loader_factory
from tests.train.conftest import write_config

GLOBAL_BATCH, STEPS = 4, 3


def take(batch: dict, rank: int, world: int) -> dict:
    """Rank `rank`'s share of a crop-major global batch."""
    b = GLOBAL_BATCH // world

    def rows(t: torch.Tensor) -> torch.Tensor:
        n = t.shape[0] // GLOBAL_BATCH
        return torch.cat([t[c * GLOBAL_BATCH + rank * b : c * GLOBAL_BATCH + (rank + 1) * b] for c in range(n)])

    out = {
        "global_crops": rows(batch["global_crops"]),
        "local_crops": rows(batch["local_crops"]),
        "step": batch["step"],
        "source": batch["source"],
    }
    out.update(collate_masks(rows(batch["masks"]), batch["upperbound"]))
    return out


class Sliced:
    def __init__(self, full, rank, world):
        self.full, self.rank, self.world = full, rank, world

    def __iter__(self):
        for batch in self.full:
            yield take(batch, self.rank, self.world)


def main(modes: str, data: str, out_dir: str) -> None:
    """Run each comma-separated mode of `modes` in turn (see the module docstring)."""
    names = modes.split(",")
    assert names == ["single"] or "single" not in names, "single (1 process) runs in a launch of its own"
    for mode in names:
        run(mode, data, str(Path(out_dir) / f"{mode}.pt"))
    import torch.distributed as dist

    if dist.is_initialized():  # gloo can abort at interpreter exit: barrier, destroy, leave at once
        dist.barrier()
        dist.destroy_process_group()
        sys.stdout.flush()
        os._exit(0)


def run(mode: str, data: str, out: str) -> None:
    """One mode's training run(s), saved to `out` by global rank 0."""
    world = 1 if mode == "single" else 2
    folder = Path(out).parent
    cfg = load_config(
        PretrainConfig,
        write_config(folder / f"{mode}.yaml", folder / f"run_{mode}", Path(data)),
        [
            f"batch_size={GLOBAL_BATCH}",
            f"trainer.max_steps={STEPS}",
            "ssl.student.drop_path_rate=0.0",
            "ssl.student.overrides.pos_embed_rope_rescale_coords=null",
            "ssl.koleo.distributed=true",
            "ssl.koleo.group_size=2",
            "ssl.monitor.every=0",
            "trainer.loggers=[]",
            "checkpoint.every_n_steps=100",
            *(["trainer.strategy=fsdp2", "trainer.meta_init=true"] if mode == "fsdp2_meta" else []),
        ],
    )
    init_state: dict = {}
    full = loader_factory(cfg)

    def factory(start_step: int, rank: int, world_size: int):
        return Sliced(full(start_step=start_step, rank=0, world_size=1), rank, world_size)

    losses: list[float] = []

    class Spy(SSLModule):
        def configure_model(self):
            super().configure_model()
            if mode == "fsdp2_meta" and not init_state:  # the full initial weights, gathered from the shards
                from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

                opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
                init_state.update(get_model_state_dict(self.arch, options=opts))

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            losses.append(float(loss))
            return loss

    strategy = "auto" if mode == "single" else ("ddp" if mode == "ddp" else "fsdp2")

    def fit(max_steps: int, ckpt_path: str | None = None, sharded: bool = False):
        """Build the arch from seed 0 and train to `max_steps` (resuming from `ckpt_path` when given)."""
        torch.manual_seed(0)
        arch = build_arch(cfg)
        tcfg = TrainerConfig(
            max_steps=max_steps,
            accelerator="cpu",
            devices=world,
            strategy=strategy,
            precision="32-true",
            loggers=[],
            progress_bar=False,
            fsdp_param_dtype=os.environ.get("FSDP_DTYPE", "float32"),
        )
        module = Spy(
            arch,
            arch.schedules.at,
            loader_factory=factory,
            seed=0,
            clip_grad=cfg.ssl.optim.clip_grad,
            fsdp=fsdp_settings(tcfg),
            checkpoint_dir=Path(cfg.output_dir) / "checkpoints",
            # the run config, as pretrain saves it: its export records the data's normalisation
            checkpoint_meta=lambda s: {"backbone": dict(arch.student["backbone"].config), "config": to_dict(cfg)},
            post_init=post_init,
            activation_checkpointing="selective" if mode == "fsdp2_ac" else "off",
        )
        ckpt = CheckpointConfig(every_n_steps=100, sharded=sharded)
        trainer, cb = build_trainer(tcfg, ckpt, Path(cfg.output_dir))
        trainer.fit(module, ckpt_path=ckpt_path)
        return arch, trainer, cb

    checkpointed = [0]  # calls of torch.utils.checkpoint (fsdp2_ac: the student's blocks run checkpointed)
    import torch.utils.checkpoint as tuc

    real_checkpoint = tuc.checkpoint

    def counting_checkpoint(*args, **kwargs):
        checkpointed[0] += 1
        return real_checkpoint(*args, **kwargs)

    tuc.checkpoint = counting_checkpoint  # undone at the end: the next mode of this launch counts its own calls

    post_init = None
    init_file = Path(folder) / f"meta_init_from_{os.environ.get('LOCAL_RANK', '0')}.pth"
    if mode == "fsdp2_meta":
        # init_from under meta init: an official-layout backbone (seed 7, built in full), applied into the
        # shards after they are initialised; the heads stay freshly initialised on the shards
        from functools import partial

        from geodino.train.checkpointing import apply_init, read_init_source

        torch.manual_seed(7)
        plain = build_arch(dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, meta_init=False)))
        torch.save(plain.teacher["backbone"].state_dict(), init_file)
        post_init = partial(apply_init, src=read_init_source(init_file))

    if mode.startswith("fsdp2_resume"):
        # stop after 2 of the 3 steps (checkpoint at the end), then a fresh arch resumes to step 3: must equal the
        # uninterrupted fsdp2 run (optimizer moments, schedule position and data position all restored)
        sharded_ckpt = mode.endswith("sharded")
        _, _, cb = fit(STEPS - 1, sharded=sharded_ckpt)
        assert cb.last_path is not None and cb.last_path.is_dir() == sharded_ckpt, cb.last_path
        losses.clear()
        arch, trainer, cb = fit(STEPS, ckpt_path=str(cb.last_path), sharded=sharded_ckpt)
    else:
        arch, trainer, cb = fit(STEPS)
    sharded = any(type(p).__name__ == "DTensor" for p in arch.student.parameters())
    if mode.startswith("fsdp2"):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(arch, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = arch.state_dict()
    # every rank's losses, so the test can average them
    import torch.distributed as dist

    all_losses = [losses]
    if dist.is_initialized():
        all_losses = [None] * dist.get_world_size()
        dist.all_gather_object(all_losses, losses)
    if trainer.is_global_zero:
        torch.save(
            {
                "state": {k: v.detach().cpu() for k, v in state.items()},
                "losses": all_losses,
                "sharded": sharded,
                "checkpointed": checkpointed[0],
                "world": trainer.world_size,
                "ckpt": str(cb.last_path),
                "init_state": {k: v.detach().cpu().clone() for k, v in init_state.items()},
                "init_from": str(init_file),
            },
            out,
        )
    tuc.checkpoint = real_checkpoint


if __name__ == "__main__":
    main(*sys.argv[1:4])
