"""The LightningModule around the SSL meta-architecture, and the Trainer built from the config.

Why manual optimisation: every DINOv3 hyper-parameter is a schedule indexed by the iteration (lr, weight
decay, EMA momentum, teacher temperature, last-layer freeze, Gram weight), the EMA update must follow each
optimizer step, gradients are clipped per student sub-module (as official), and a NaN loss must stop the run
before it reaches the weights. One explicit `training_step` does all of that in the official order:

    seed(step) -> set lr/wd for this step -> forward (losses) -> NaN guard (all ranks) -> backward
    -> [head warm-up: drop backbone grads] -> clip per sub-module -> AdamW step -> EMA teacher -> Gram refresh

Randomness inside the step (drop path, RoPE jitter) is re-seeded from (seed, step, rank), and the data is a
pure function of (seed, sample index): so a run resumed from a checkpoint at step s computes exactly what
the uninterrupted run computed (tests/train/test_resume.py).

Strategies (`trainer.strategy`): `auto`/`single`, `ddp`, `ddp_spawn`, `fsdp2`. FSDP2 uses Lightning's
ModelParallelStrategy with our `configure_model`: `fully_shard` per transformer block, then per head and per
backbone root, for student, teacher and Gram teacher, with `MixedPrecisionPolicy(bf16 params, fp32 reduce)`
as the official recipe. SLURM: Lightning's SLURMEnvironment is used when the job runs under `srun` (auto
requeue on SIGUSR1, resumed from the newest checkpoint).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf
from torch import nn

from geodino.errors import ConfigError, TrainingError
from geodino.io import temp_name
from geodino.train import checkpointing as ckpt_lib

# the run configs live in the light `pretrain` module (the CLI reads them without importing Lightning)
from geodino.train.config import PRECISIONS, STRATEGIES, CheckpointConfig, TrainerConfig

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "CheckpointCallback",
    "CheckpointConfig",
    "RunProgressBar",
    "SSLModule",
    "TrainerConfig",
    "build_trainer",
    "fsdp_settings",
]

log = logging.getLogger("geodino.train")

# --------------------------------------------------------------------------------------------------------------
# the LightningModule
# --------------------------------------------------------------------------------------------------------------


class SSLModule(L.LightningModule):
    """Student + EMA teacher (+ Gram teacher) trained with DINO + iBOT + KoLeo (+ Gram), one step per batch.

    `arch` follows `geodino.train.ssl.SSLMetaArch`: `student`/`teacher` ModuleDicts (backbone, dino_head,
    ibot_head), optional `gram_teacher`, `forward(batch, iteration) -> (loss, logs)`, `update_teacher(m)`,
    `maybe_refresh_gram(iteration)`, `param_groups()`.
    """

    def __init__(
        self,
        arch: nn.Module,
        schedules: Callable[[int], dict[str, float]],
        *,
        loader_factory: Callable[..., Any] | None = None,
        seed: int = 0,
        clip_grad: float = 3.0,
        betas: tuple[float, float] = (0.9, 0.999),
        head_warmup_steps: int = 0,
        fsdp: dict[str, Any] | None = None,
        checkpoint_meta: Callable[[int], dict[str, Any]] | None = None,
        checkpoint_dir: Path | None = None,
        compile_blocks: bool = False,
        activation_checkpointing: str = "off",
        fused: bool | None = None,
        post_init: Callable[[nn.Module], Any] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.arch = arch
        self.schedules = schedules
        self.loader_factory = loader_factory
        self.seed = seed
        self.clip_grad = clip_grad
        self.betas = tuple(betas)
        self.head_warmup_steps = head_warmup_steps
        self.fsdp = fsdp
        self.checkpoint_meta = checkpoint_meta
        self.checkpoint_dir = checkpoint_dir
        self.compile_blocks = compile_blocks
        self.activation_checkpointing = activation_checkpointing
        self.fused = fused
        self.post_init = post_init
        self.strict_loading = True

    # ---- setup ------------------------------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Official order: activation checkpointing of the student's blocks, compile per block, then FSDP2 (shard
        every transformer block, then each head and backbone root of student, teacher and Gram teacher)."""
        from geodino.train.activation_checkpointing import apply_activation_checkpointing

        apply_activation_checkpointing(self.arch.student["backbone"].blocks, self.activation_checkpointing)
        if self.compile_blocks and not getattr(self, "_compiled", False):
            # compile per block before sharding (official order); the ViT calls `blk.forward_list`, so that is
            # the method compiled (an instance attribute, which FSDP2's method hook below then wraps)
            for part in self._parts():
                for module in part.values():
                    for blk in getattr(module, "blocks", []):
                        target = "forward_list" if hasattr(blk, "forward_list") else "forward"
                        setattr(blk, target, torch.compile(getattr(blk, target)))
            self._compiled = True
        if self.fsdp is None:
            self._run_post_init()
            return
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        if getattr(self, "_sharded", False):
            return
        mesh = self.device_mesh["data_parallel"]
        mp = MixedPrecisionPolicy(
            param_dtype=getattr(torch, self.fsdp["param_dtype"]), reduce_dtype=getattr(torch, self.fsdp["reduce_dtype"])
        )
        kw = {"mesh": mesh, "mp_policy": mp, "reshard_after_forward": self.fsdp["reshard_after_forward"]}
        for part in self._parts():
            for module in part.values():
                for blk in getattr(module, "blocks", []):
                    fully_shard(blk, **kw)
                    # the ViT runs its blocks through `forward_list` (list-of-crops), not __call__: hook it too
                    if hasattr(blk, "forward_list"):
                        register_fsdp_forward_method(blk, "forward_list")
                fully_shard(module, **kw)  # root: patch embed, tokens, norms (SSLMetaArch calls it via __call__)
        self._sharded = True
        if any(p.is_meta for p in self.arch.parameters()):
            # DTensor random ops on CPU meshes draw each shard from the local generator: seed per rank so the
            # shards differ (on CUDA, DTensor's offset-based RNG tracker makes the init sharding-independent)
            torch.manual_seed(self.seed * 100_003 + self.global_rank)
            self.arch.materialize(self.device)
        self._run_post_init()

    def _run_post_init(self) -> None:
        """Apply `post_init` (e.g. init_from under meta init) once, after the weights exist."""
        if self.post_init is not None and not getattr(self, "_post_init_done", False):
            self.post_init(self.arch)
            self._post_init_done = True

    def _parts(self) -> list[nn.ModuleDict]:
        parts = [self.arch.student, self.arch.teacher]
        gram = getattr(self.arch, "gram_teacher", None)
        if gram is not None:
            parts.append(gram if isinstance(gram, nn.ModuleDict) else nn.ModuleDict({"backbone": gram}))
        return parts

    def configure_optimizers(self) -> torch.optim.Optimizer:
        from geodino.train.optim import build_optimizer

        # lr and wd are set by hand every step from the schedules (groups carry the multipliers)
        return build_optimizer(self.arch.param_groups(), betas=self.betas, fused=self.fused)

    def train_dataloader(self) -> Any:
        if self.loader_factory is None:
            raise TrainingError("no data: SSLModule needs a loader_factory (pretrain() builds it from cfg.data)")
        t = self.trainer
        # the data position is the global step: a resumed run reads exactly what the uninterrupted one would
        return self.loader_factory(start_step=t.global_step, rank=t.global_rank, world_size=t.world_size)

    # ---- the step ---------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        it = self.trainer.global_step
        if isinstance(batch, dict) and "step" in batch and int(batch["step"]) != it:
            raise TrainingError(
                f"data loader yielded the batch of step {int(batch['step'])} at step {it}; the loader must start "
                "at the checkpoint's step (start_step) so a resumed run reads the same data"
            )
        # drop path, RoPE jitter and any other in-step randomness: a pure function of (seed, step, rank)
        torch.manual_seed((self.seed * 1_000_003 + it * 7919 + self.global_rank) % (2**63 - 1))
        opt = self.optimizers()
        sched = self.schedules(it)
        self._apply_schedules(opt.optimizer, sched, it)

        if isinstance(batch, dict) and "photometric" in batch:  # crops.photometric: device (applied here, batched)
            from geodino.data.collate import finish_photometric

            batch = finish_photometric(batch)
        loss, logs = self.arch(batch, it)
        finite = bool(torch.isfinite(loss.detach()).all())
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            self._raise_nan(loss, logs, it)

        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if it < self.head_warmup_steps:  # fresh heads on a pretrained backbone: train the heads only
            for p in self.arch.student["backbone"].parameters():
                p.grad = None
        norms = self._clip()
        opt.step()
        self.arch.update_teacher(float(sched["momentum"]))
        refresh = getattr(self.arch, "maybe_refresh_gram", None)
        if callable(refresh):
            refresh(it)

        self._log_step(loss, logs, sched, norms)
        return loss.detach()

    def _apply_schedules(self, opt: torch.optim.Optimizer, sched: dict[str, float], it: int) -> None:
        """Set each group's lr and wd for this iteration (multipliers from the param groups, as official)."""
        from geodino.train.optim import apply_optim_schedule

        apply_optim_schedule(opt, sched["lr"], sched["weight_decay"], sched.get("last_layer_lr", sched["lr"]))

    def _clip(self) -> dict[str, torch.Tensor]:
        """Clip the gradient norm of each student sub-module separately (official `clip_grad` semantics)."""
        from geodino.train.optim import clip_grad_per_module

        return clip_grad_per_module(self.arch.student, self.clip_grad)

    def _raise_nan(self, loss: torch.Tensor, logs: dict[str, Any], it: int) -> None:
        terms = ", ".join(f"{k}={float(v):.4g}" for k, v in logs.items() if _is_number(v))
        last = ckpt_lib.latest_checkpoint(self.checkpoint_dir) if self.checkpoint_dir else None
        then = (
            f"the last good checkpoint is {last}; lower ssl.schedules.lr.peak or ssl.optim.clip_grad and rerun the "
            "same command to resume from it"
            if last
            else "no checkpoint was written yet; lower ssl.schedules.lr.peak or ssl.optim.clip_grad and start again"
        )
        raise TrainingError(
            f"loss is {float(loss.detach().float().mean())} at step {it} ({terms or 'no terms logged'}); training "
            f"stopped and {then}"
        )

    def _log_step(self, loss: torch.Tensor, logs: dict[str, Any], sched: dict[str, float], norms: dict) -> None:
        bar = {"loss": loss.detach().float()}
        rest: dict[str, Any] = {}
        for k, v in logs.items():
            if not _is_number(v):
                continue
            v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
            (bar if k.endswith("_loss") or k in ("dino_local", "dino_global", "ibot", "koleo", "gram") else rest)[k] = v
        rest.update({f"sched/{k}": float(v) for k, v in sched.items()})
        rest.update({f"grad_norm/{k}": v for k, v in norms.items()})
        self.log_dict(bar, prog_bar=True, on_step=True, on_epoch=False, batch_size=1)
        self.log_dict(rest, prog_bar=False, on_step=True, on_epoch=False, batch_size=1)

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        step = self.trainer.global_step
        meta = {"format": ckpt_lib.FORMAT, "version": ckpt_lib.VERSION, "step": step}
        if self.checkpoint_meta is not None:
            meta.update(self.checkpoint_meta(step))
        checkpoint["geodino"] = meta


def _is_number(v: Any) -> bool:
    """A scalar worth logging: a one-element tensor or a plain int/float."""
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, int | float) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------------------------------
# checkpoint callback (atomic, every N steps and at the end)
# --------------------------------------------------------------------------------------------------------------


class CheckpointCallback(L.Callback):
    """Write `step_XXXXXXXX.ckpt` every N steps and at the end, atomically, and point `last.ckpt` at it.

    Every rank takes part (FSDP2 gathers or writes shards); the file is written under a temporary name and
    renamed by rank 0 after a barrier, so a killed run never leaves a half-written checkpoint under a final
    name, and a NaN-stopped run keeps its previous checkpoint untouched.
    """

    def __init__(self, folder: Path, every_n_steps: int, keep_last: int = 3) -> None:
        from geodino.train.stop import StopRequest

        self.folder = Path(folder)
        self.every = every_n_steps
        self.keep_last = keep_last
        self.last_saved_step = -1
        self.last_path: Path | None = None
        self.stop = StopRequest()  # Ctrl-C / SIGTERM: finish the step, save it, stop (geodino.train.stop)
        self.stopped_at: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop.install()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.stop.restore()  # here and in on_train_end: before the Trainer restores its own (its teardown)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every == 0:
            self.save(trainer)
        multi = trainer.world_size > 1
        if trainer.max_steps is not None and 0 < trainer.max_steps <= step:
            return  # the last step: a request now is no stop, the run is complete (pretrain says so)
        if self.stop.agreed(partial(trainer.strategy.reduce_boolean_decision, all=False) if multi else None):
            if step > 0 and step != self.last_saved_step:
                self.save(trainer)
            self.stopped_at = step
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop.restore()
        if trainer.global_step != self.last_saved_step and trainer.global_step > 0:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> Path:
        step = trainer.global_step
        final = self.folder / f"step_{step:08d}.ckpt"
        # the same temporary name on every rank (temp_name uses the pid, so take rank 0's)
        tmp = Path(trainer.strategy.broadcast(str(temp_name(final))))
        if trainer.is_global_zero:
            self.folder.mkdir(parents=True, exist_ok=True)
        trainer.strategy.barrier("geodino_ckpt_mkdir")
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # optimiser and loops too: a killed run resumes
        except BaseException:
            if trainer.is_global_zero:
                _remove(tmp)
            raise
        trainer.strategy.barrier("geodino_ckpt_written")
        if trainer.is_global_zero:
            if final.is_dir():
                import shutil

                shutil.rmtree(final)
            os.replace(tmp, final)
            _point_last(self.folder / "last.ckpt", final.name)
            if self.keep_last > 0:
                for old in ckpt_lib.find_checkpoints(self.folder)[: -self.keep_last]:
                    _remove(old)
        trainer.strategy.barrier("geodino_ckpt_renamed")
        self.last_saved_step, self.last_path = step, final
        return final


def _point_last(link: Path, target_name: str) -> None:
    """Atomically make `last.ckpt` a relative symlink to the newest step checkpoint."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def _remove(p: Path) -> None:
    import shutil

    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------
# the Trainer
# --------------------------------------------------------------------------------------------------------------


class _DropTips(logging.Filter):
    """Drops Lightning's advertising ("💡 Tip: ... try installing litlogger") from its console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


class RunProgressBar(TQDMProgressBar):
    """Lightning's progress bar, counting `step/max_steps` in a resumed run too.

    The SSL loader is one epoch as long as the whole run, so a resumed run restarts inside that epoch: Lightning
    then skips `on_train_epoch_start`, where its bar gets a total, and its `total_train_batches` counts the steps
    left from the current step while the bar counts batches from the epoch's start; a run resumed at step 43
    showed `43/?`. Here the total counts from the step the epoch began at, and a resume inside the epoch starts
    the bar at the restored step (`43/M`, its rate over the steps this launch ran).
    """

    _epoch_start: int | None = None  # the global step the current epoch began at (None: not known yet)

    @property
    def total_train_batches(self) -> int | float:
        """The batches of this epoch up to `max_steps` (Lightning's count, but from the epoch's first step)."""
        t = self.trainer
        if self._epoch_start is None or not (t.max_epochs == -1 and t.max_steps is not None and t.max_steps > 0):
            return super().total_train_batches
        return min(t.num_training_batches, t.max_steps - self._epoch_start)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._epoch_start = None
        loop = trainer.fit_loop
        if not loop.restarted_mid_epoch:  # on_train_epoch_start follows and sets the bar up
            return
        done = int(loop.epoch_loop.batch_progress.current.ready)  # the epoch's batches the checkpoint had run
        self._epoch_start = trainer.global_step - done
        bar = self.train_progress_bar
        bar.reset(total=convert_inf(self.total_train_batches))
        bar.n = bar.initial = done
        bar.set_description(f"Epoch {trainer.current_epoch}")

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._epoch_start = trainer.global_step
        super().on_train_epoch_start(trainer, *args)


def _quiet_lightning() -> None:
    """Keep Lightning's real messages on the console and drop its noise: the litlogger / litmodels tips and a torch
    pytree deprecation that Lightning's own code triggers on every step (nothing a geodino user can act on)."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    for handler in logging.getLogger("lightning.pytorch").handlers:
        if not any(isinstance(f, _DropTips) for f in handler.filters):
            handler.addFilter(_DropTips())


def build_trainer(
    cfg: TrainerConfig, ckpt: CheckpointConfig, out_dir: Path, run_name: str | None = None
) -> tuple[L.Trainer, CheckpointCallback]:
    """A Lightning Trainer for `cfg` writing logs and checkpoints under `out_dir` (trackers name the run `run_name`)."""
    import warnings

    cfg.validate()
    ckpt.validate()
    # the teachers stay in eval mode on purpose (no drop path, no RoPE augmentation): not worth a warning
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    _quiet_lightning()
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    strategy, precision, plugins = _strategy(cfg, ckpt)
    ckpt_cb = CheckpointCallback(out_dir / "checkpoints", ckpt.every_n_steps, ckpt.keep_last)
    callbacks: list[L.Callback] = [ckpt_cb]
    if cfg.progress_bar:
        callbacks.append(RunProgressBar(refresh_rate=1))
    from geodino.train.profiling import callback as profile_callback

    profiler = profile_callback(cfg.profile_steps, cfg.max_steps, out_dir / "profile")
    if profiler is not None:
        callbacks.append(profiler)
    from geodino.train.loggers import build_loggers

    loggers = build_loggers(
        cfg.loggers, out_dir, run_name=run_name or out_dir.name, options=cfg.logger_options, key="trainer.loggers"
    )
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices="auto" if cfg.devices == -1 else cfg.devices,  # auto: every GPU, or 1 CPU process
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=precision,
        plugins=plugins or None,
        max_steps=cfg.max_steps,
        max_epochs=-1,
        callbacks=callbacks,
        logger=loggers or False,
        # a run shorter than log_every_n_steps still logs (its last step), so that it gets its curves.png
        log_every_n_steps=max(1, min(cfg.log_every_n_steps, cfg.max_steps)),
        enable_checkpointing=False,  # our CheckpointCallback writes atomically; Lightning's would not
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the SSL loader shards by rank itself (rank r reads its own indices)
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=str(out_dir),
        benchmark=None,
    )
    return trainer, ckpt_cb


def _strategy(cfg: TrainerConfig, ckpt: CheckpointConfig) -> tuple[Any, str, list[Any]]:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    plugins: list[Any] = []
    if SLURMEnvironment.detect():
        import signal

        plugins.append(SLURMEnvironment(auto_requeue=cfg.slurm_auto_requeue, requeue_signal=signal.SIGUSR1))
    precision = cfg.precision
    if precision == "auto":
        on_gpu = cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available())
        precision = "bf16-mixed" if on_gpu else "32-true"
    if cfg.strategy in ("auto", "single"):
        return "auto", precision, plugins
    if cfg.strategy in ("ddp", "ddp_spawn"):
        from lightning.pytorch.strategies import DDPStrategy

        start = "spawn" if cfg.strategy == "ddp_spawn" else "popen"
        return (
            DDPStrategy(
                start_method=start, find_unused_parameters=cfg.find_unused_parameters, gradient_as_bucket_view=True
            ),
            precision,
            plugins,
        )
    from lightning.pytorch.strategies import ModelParallelStrategy

    # FSDP2 keeps fp32 master weights and computes in fsdp_param_dtype through MixedPrecisionPolicy (as
    # official), so Lightning's own precision plugin stays at 32-true (no autocast on top)
    devices = cfg.devices if cfg.devices > 0 else max(torch.cuda.device_count(), 1)
    return (
        # pure data parallelism: one FSDP2 mesh dimension over every process of every node
        ModelParallelStrategy(
            data_parallel_size=devices * cfg.num_nodes,
            tensor_parallel_size=1,
            save_distributed_checkpoint=ckpt.sharded,
        ),
        "32-true",
        plugins,
    )


def fsdp_settings(cfg: TrainerConfig) -> dict[str, Any] | None:
    """The FSDP2 options the module needs in `configure_model` (None when not using FSDP2)."""
    if cfg.strategy != "fsdp2":
        return None
    for key in ("fsdp_param_dtype", "fsdp_reduce_dtype"):
        if not isinstance(getattr(torch, getattr(cfg, key), None), torch.dtype):
            raise ConfigError(f"trainer.{key}={getattr(cfg, key)!r} is not a torch dtype (bfloat16, float32, ...)")
    return {
        "param_dtype": cfg.fsdp_param_dtype,
        "reduce_dtype": cfg.fsdp_reduce_dtype,
        "reshard_after_forward": cfg.fsdp_reshard_after_forward,
    }
