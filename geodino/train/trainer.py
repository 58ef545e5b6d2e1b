"""The Lightning Trainer built from the run config: strategy (auto/single, DDP, FSDP2 through ModelParallelStrategy),
precision, SLURM requeue, loggers, profiler, the checkpoint callback and a progress bar that counts `step/max_steps`
in a resumed run too; `fsdp_settings` gives the module the FSDP2 options it shards with.

Kept apart from `geodino.train.module` (the LightningModule), which re-exports every name here.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Literal, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf

from geodino.models.fast_choice import bf16_default
from geodino.progress import line_options, progress_mode
from geodino.train.checkpoint_callback import CheckpointCallback
from geodino.train.config import CheckpointConfig, TrainerConfig

__all__ = ["RunProgressBar", "build_trainer", "fsdp_settings"]


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

    The loss terms it shows are the module's `progress_values`: read on the host on logging steps only (every
    `trainer.log_every_n_steps` steps, in the one device-to-host copy of the logged row), so they refresh on those
    steps and are absent before the first one; reading them every step made every step wait for the device.

    Where stdout (Lightning's stream) is not a terminal (a batch job's log) the bar writes whole lines instead of
    redrawing itself every step, as every geodino bar does (`geodino.progress`, `GEODINO_PROGRESS`).
    """

    _epoch_start: int | None = None  # the global step the current epoch began at (None: not known yet)

    @property
    def total_train_batches(self) -> int | float:
        """The batches of this epoch up to `max_steps` (Lightning's count, but from the epoch's first step)."""
        t = self.trainer
        if self._epoch_start is None or not (t.max_epochs == -1 and t.max_steps is not None and t.max_steps > 0):
            return super().total_train_batches
        return min(t.num_training_batches, t.max_steps - self._epoch_start)

    def init_train_tqdm(self) -> Tqdm:
        """Lightning's bar, or in 'lines' mode one that writes its state as a line every `GEODINO_PROGRESS_INTERVAL`
        seconds (30) and when training ends: a redrawn bar in a log file is one line of `\\r` updates, two a step."""
        if progress_mode(sys.stdout) != "lines":
            return super().init_train_tqdm()
        return Tqdm(
            disable=self.is_disabled, leave=True, smoothing=0, **line_options(sys.stdout, self.train_description)
        )

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's items plus the loss terms of the module's last logged row (host floats: nothing is read)."""
        return {**super().get_metrics(trainer, pl_module), **getattr(pl_module, "progress_values", {})}

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
    cfg: TrainerConfig, ckpt: CheckpointConfig, out_dir: Path, run_name: str | None = None, *, loggers: bool = True
) -> tuple[L.Trainer, CheckpointCallback]:
    """A Lightning Trainer for `cfg` writing logs and checkpoints under `out_dir` (trackers name the run `run_name`).

    `loggers=False` builds none of `cfg.loggers`: the re-run of a finished run trains nothing, and each logger would
    still start a run of its own (an empty TensorBoard events file, a new W&B or MLflow run)."""
    import warnings

    cfg.validate()
    ckpt.validate()
    # the teachers stay in eval mode on purpose (no drop path, no RoPE augmentation): not worth a warning
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    _quiet_lightning()
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    strategy, precision, plugins = _strategy(cfg, ckpt)
    from geodino.train.stop import on_slurm

    # SLURM's SIGUSR1 is geodino's stop request (save at the step's end, then requeue), not Lightning's (_strategy)
    requeue = cfg.slurm_auto_requeue and on_slurm()
    ckpt_cb = CheckpointCallback(out_dir / "checkpoints", ckpt.every_n_steps, ckpt.keep_last, requeue=requeue)
    callbacks: list[L.Callback] = [ckpt_cb]
    # GEODINO_PROGRESS=off turns the bar off as progress_bar=false does (read here: a bad value fails before the run)
    bar = cfg.progress_bar and progress_mode(sys.stdout) != "off"
    if bar:
        callbacks.append(RunProgressBar(refresh_rate=1))
    from geodino.train.profiling import callback as profile_callback

    profiler = profile_callback(cfg.profile_steps, cfg.max_steps, out_dir / "profile")
    if profiler is not None:
        callbacks.append(profiler)
    from geodino.train.loggers import build_loggers

    names, options = (cfg.loggers, cfg.logger_options) if loggers else ([], {})
    trackers = build_loggers(names, out_dir, run_name=run_name or out_dir.name, options=options, key="trainer.loggers")
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
        logger=trackers or False,
        # a run shorter than log_every_n_steps still logs (its last step), so that it gets its curves.png
        log_every_n_steps=max(1, min(cfg.log_every_n_steps, cfg.max_steps)),
        enable_checkpointing=False,  # our CheckpointCallback writes atomically; Lightning's would not
        enable_progress_bar=bar,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the SSL loader shards by rank itself (rank r reads its own indices)
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=str(out_dir),
        benchmark=None,
    )
    return trainer, ckpt_cb


# the precisions of geodino.train.config.PRECISIONS once "auto" is resolved, as Lightning's Literal spells them
Precision = Literal["32-true", "bf16-mixed", "16-mixed"]


def _strategy(cfg: TrainerConfig, ckpt: CheckpointConfig) -> tuple[Any, Precision, list[Any]]:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from geodino.train.launcher import on_cuda
    from geodino.train.stop import on_slurm

    plugins: list[Any] = []
    if on_slurm():
        import signal

        # Lightning's auto requeue saved hpc_ckpt_N.ckpt from its signal handler, mid-step and not atomically, and
        # kept training; geodino's CheckpointCallback handles SIGUSR1 at a step boundary instead (geodino.train.stop)
        plugins.append(SLURMEnvironment(auto_requeue=False, requeue_signal=signal.SIGUSR1))
    if cfg.precision == "auto":
        on_gpu = on_cuda(cfg.accelerator)
        # bf16 where the GPU computes it natively; float16 with a loss scaler on older GPUs (V100, T4), which only
        # emulate bf16 (slow matrix products, SDPA's math fallback)
        precision: Precision = ("bf16-mixed" if bf16_default("cuda") else "16-mixed") if on_gpu else "32-true"
    else:
        precision = cast(Precision, cfg.precision)  # one of PRECISIONS: TrainerConfig refuses any other
    if cfg.strategy in ("auto", "single"):
        return "auto", precision, plugins
    if cfg.strategy in ("ddp", "ddp_spawn"):
        from lightning.pytorch.strategies import DDPStrategy

        start: Literal["spawn", "popen"] = "spawn" if cfg.strategy == "ddp_spawn" else "popen"
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
    # the dtype names are checked when the config is read (TrainerConfig.validate)
    return {
        "param_dtype": cfg.fsdp_param_dtype,
        "reduce_dtype": cfg.fsdp_reduce_dtype,
        "reshard_after_forward": cfg.fsdp_reshard_after_forward,
    }
