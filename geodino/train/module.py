"""The LightningModule around the SSL meta-architecture.

The Trainer built from the config lives in `geodino.train.trainer` and the atomic checkpoint callback in
`geodino.train.checkpoint_callback`; both are re-exported here (`pretrain` and the tests import them from here).

Why manual optimisation: every DINOv3 hyper-parameter is a schedule indexed by the iteration (lr, weight
decay, EMA momentum, teacher temperature, last-layer freeze, Gram weight), the EMA update must follow each
optimizer step, gradients are clipped per student sub-module (as official), and a NaN loss must stop the run
before it reaches the weights. One explicit `training_step` does all of that in the official order:

    seed(step) -> set lr/wd for this step -> forward (losses) -> NaN guard (all ranks) -> backward
    -> [head warm-up: drop backbone grads] -> clip per sub-module -> AdamW step -> EMA teacher -> Gram refresh

Randomness inside the step (drop path, RoPE jitter) is re-seeded from (seed, step, rank), and the data is a
pure function of (seed, sample index): so a run resumed from a checkpoint at step s computes exactly what
the uninterrupted run computed (tests/train/test_resume.py).

Strategies (`trainer.strategy`, built in `geodino.train.trainer`): `auto`/`single`, `ddp`, `ddp_spawn`, `fsdp2`.
FSDP2 uses Lightning's ModelParallelStrategy with our `configure_model`: `fully_shard` per transformer block, then
per head and per backbone root, for student, teacher and Gram teacher, with `MixedPrecisionPolicy(bf16 params,
fp32 reduce)` as the official recipe. SLURM: Lightning's SLURMEnvironment is used when the job runs under `srun`;
its SIGUSR1 warning is geodino's stop request (`geodino.train.stop`: the step finishes and is saved, rank 0 requeues
the job, which resumes from that checkpoint), not Lightning's mid-step handler.

Logging: the step keeps its values as device tensors and reads them on the host only on the steps that log
(every `trainer.log_every_n_steps`), in one copy (`_log_step`); the rows go to the loggers as Lightning wrote them
(same steps, same columns, an `epoch` column), values logged as Python floats (the schedules) now exactly instead
of through a float32 tensor. `self.log` is not used, so `trainer.callback_metrics` / `progress_bar_metrics` stay
empty; `RunProgressBar` shows the loss terms of the last logged row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from torch import nn

from geodino.errors import TrainingError
from geodino.losses.float32 import float32_region
from geodino.train import checkpointing as ckpt_lib
from geodino.train.checkpoint_callback import CheckpointCallback

# the run configs live in the light `pretrain` module (the CLI reads them without importing Lightning)
from geodino.train.config import PRECISIONS, STRATEGIES, CheckpointConfig, TrainerConfig
from geodino.train.trainer import RunProgressBar, build_trainer, fsdp_settings

if TYPE_CHECKING:
    from geodino.train.ssl import SSLMetaArch

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

    # the step's row of logged values (set per epoch and per step; declared for their types)
    _row: dict[str, Any]
    _row_step: int | None
    _host_row: dict[str, float] | None

    def __init__(
        self,
        arch: SSLMetaArch,
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
        self.betas = (betas[0], betas[1])  # a tuple (a config may give a list)
        self.head_warmup_steps = head_warmup_steps
        self.fsdp = fsdp
        self.checkpoint_meta = checkpoint_meta
        self.checkpoint_dir = checkpoint_dir
        self.compile_blocks = compile_blocks
        self.activation_checkpointing = activation_checkpointing
        self.fused = fused
        self.post_init = post_init
        self.strict_loading = True
        # the loss terms of the last logged row, shown by RunProgressBar (refreshed on logging steps only)
        self.progress_values: dict[str, float] = {}
        self.on_train_epoch_start()

    # ---- setup ------------------------------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Official order: activation checkpointing of the student's blocks, compile per block, then FSDP2 (shard
        every transformer block, then each head and backbone root of student, teacher and Gram teacher)."""
        from geodino.train.activation_checkpointing import apply_activation_checkpointing

        # the student backbone's blocks (a ModuleDict entry's attribute, typed Tensor | Module)
        apply_activation_checkpointing(self.arch.student["backbone"].blocks, self.activation_checkpointing)  # type: ignore[arg-type]
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
        assert self.device_mesh is not None  # set by the FSDP strategy (fsdp_settings) before configure_model
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
    def on_train_start(self) -> None:
        """Tell the arch's collapse monitor this process's global rank: each rank checks its own batch, only rank 0
        warns (one paragraph per run, not one per process)."""
        monitor = getattr(self.arch, "collapse_monitor", None)
        if monitor is not None:
            monitor.rank = self.global_rank

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
        assert not isinstance(opt, list)  # the one optimizer of configure_optimizers
        sched = self.schedules(it)
        self._apply_schedules(opt.optimizer, sched, it)

        if isinstance(batch, dict) and "photometric" in batch:  # crops.photometric: device (applied here, batched)
            from geodino.data.collate import finish_photometric

            batch = finish_photometric(batch)
        loss, logs = self.arch(batch, it)

        opt.zero_grad(set_to_none=True)
        # outside the step's autocast (bf16-mixed, 16-mixed: Lightning runs training_step inside it): a backward run
        # under it casts its matrix products too, the float32 loss terms' (DINO, Gram) included; each backward op
        # runs in the dtype its forward op ran in, as torch recommends (activation checkpointing's recomputation
        # restores the forward's autocast itself)
        with float32_region(self.device.type):
            self.manual_backward(loss)
        if it < self.head_warmup_steps:  # fresh heads on a pretrained backbone: train the heads only
            for p in self.arch.student["backbone"].parameters():
                p.grad = None
        # the NaN stop reads the loss on the host: after backward is queued (checked before it, every step waited
        # for the forward to finish first) and before the optimizer step, so a bad loss never reaches the weights
        finite = bool(torch.isfinite(loss.detach()).all())
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            self._raise_nan(loss, logs, it)
        self._norms: dict[str, torch.Tensor] = {}
        opt.step()  # clips in on_before_optimizer_step: after a 16-mixed GradScaler has unscaled the gradients
        norms = self._norms
        self.arch.update_teacher(float(sched["momentum"]))
        refresh = getattr(self.arch, "maybe_refresh_gram", None)
        if callable(refresh):
            refresh(it)

        self._log_step(loss, logs, sched, norms, it)
        return loss.detach()

    def _apply_schedules(self, opt: torch.optim.Optimizer, sched: dict[str, float], it: int) -> None:
        """Set each group's lr and wd for this iteration (multipliers from the param groups, as official)."""
        from geodino.train.optim import apply_optim_schedule

        apply_optim_schedule(opt, sched["lr"], sched["weight_decay"], sched.get("last_layer_lr", sched["lr"]))

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """Clip each student sub-module's gradients (`_clip`) on unscaled gradients. With 16-mixed (GPUs without
        bf16: V100, T4) every gradient is multiplied by the GradScaler's loss scale (2^16 at the start) until it is
        unscaled; clipped before that, as before, each step was clipped to clip_grad / scale in true units and the
        logged norms were the scale times too large. Lightning unscales before this hook, except for an optimizer
        that unscales inside its own step (the fused AdamW geodino uses): that one is unscaled here (GradScaler then
        tells its step not to unscale again). In every other precision this runs where clipping always ran (after
        backward, before the update)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
            scaler.unscale_(optimizer)
        self._norms = self._clip()

    def _clip(self) -> dict[str, torch.Tensor]:
        """Clip the gradient norm of each student sub-module separately (official `clip_grad` semantics)."""
        from geodino.train.optim import clip_grad_per_module

        return clip_grad_per_module(self.arch.student, self.clip_grad)

    def _raise_nan(self, loss: torch.Tensor, logs: dict[str, Any], it: int) -> None:
        """Stop on a non-finite loss with one readable line: the step, the loss terms and at most a few other values
        that are not finite (what explains the NaN). Every value of the step (the monitors too, a dozen more) goes
        to the run's loggers (`logs/metrics.csv`), which the message names, not onto the console."""
        values = {k: float(v) for k, v in logs.items() if _is_number(v)}
        terms = nan_terms(values)
        where = self._log_nan_step(values, it)
        last = ckpt_lib.latest_checkpoint(self.checkpoint_dir) if self.checkpoint_dir else None
        # not "rerun the same command": a resume keeps the recipe (check_resume_config refuses a lower lr) and, being
        # exact, would reach the same loss at the same step; a new run may start from the last good weights instead
        then = (
            f"the last good checkpoint is {last}; a resume keeps the recipe and would reach this loss again, so start "
            f"a new output_dir with init_from={last} and init_student_from=student, with a lower "
            "ssl.schedules.lr.peak or ssl.optim.clip_grad"
            if last
            else "no checkpoint was written yet; lower ssl.schedules.lr.peak or ssl.optim.clip_grad and start again"
        )
        raise TrainingError(
            f"loss is {float(loss.detach().float().mean())} at step {it} ({terms or 'no terms logged'}{where}); "
            f"training stopped and {then}"
        )

    def _log_nan_step(self, values: dict[str, float], step: int) -> str:
        """Write every value of the step that went non-finite to the run's loggers (they are saved as the run
        fails); return the words that name where (`; every value of the step: PATH`), or "" without a csv log."""
        if not values or self._trainer is None:
            return ""
        path = None
        for logger in self.trainer.loggers:
            logger.log_metrics(values, step=step)
            file = getattr(getattr(logger, "experiment", None), "metrics_file_path", None)
            path = path or file
        return f"; every value of the step: {path}" if path else ""

    def _log_step(
        self, loss: torch.Tensor, logs: dict[str, Any], sched: dict[str, float], norms: dict, it: int
    ) -> None:
        """Keep this step's values as a row (device tensors stay on the device) and read it on the host only when the
        step logs, in one device-to-host copy (`host_floats`): a step that does not log waits for the device only in
        the NaN guard. `self.log_dict` read every logged value on its own (one GPU synchronisation per value, in the
        progress bar every step and in the loggers' conversion on logging steps), so it is not used here; the rows
        go to the loggers in `on_train_batch_end`, the loss terms to `RunProgressBar` through `progress_values`."""
        row: dict[str, Any] = {"loss": loss.detach()}
        for k, v in logs.items():
            if not _is_number(v):
                continue
            row[k] = v.detach() if isinstance(v, torch.Tensor) else float(v)
            if k.endswith("_loss") or k in _BAR_TERMS:
                self._bar_keys[k] = None
        row.update({f"sched/{k}": float(v) for k, v in sched.items()})
        row.update({f"grad_norm/{k}": v for k, v in norms.items()})
        # a key not logged at this step (the monitors, every `monitor.every` steps) keeps its last value in the next
        # logged rows, as Lightning's step results kept it: the csv has the same columns in the same rows as before
        self._row.update(row)
        self._row_step, self._host_row = it, None
        if self._logs_at(it):  # read now, so the progress bar (a callback, before on_train_batch_end) shows them
            self._read_row()

    def _logs_at(self, it: int) -> bool:
        """Whether step `it` writes a row: step 0 (the untrained loss, ~ln K, as the official MetricLogger and
        distillation log it first), then Lightning's rule for `on_step` logging (`should_update_logs`): every
        `trainer.log_every_n_steps` steps, a step that stops the run early (`trainer.should_stop`) and every step
        of a fast_dev_run; `it` is the step's global step, which is Lightning's logged step."""
        t = self.trainer
        # set on the Trainer by Lightning's connectors, not declared on its class
        if t.fast_dev_run:  # type: ignore[attr-defined]
            return True
        every = t.log_every_n_steps  # type: ignore[attr-defined]
        return every > 0 and (it == 0 or (it + 1) % every == 0 or t.should_stop)

    def _read_row(self) -> dict[str, float]:
        """The row of the last step on the host (one device-to-host copy, at most once per step)."""
        if self._host_row is None:
            from geodino.train.host import host_floats

            self._host_row = host_floats(self._row)
            self.progress_values = {k: self._host_row[k] for k in self._bar_keys if k in self._host_row}
        return self._host_row

    def on_train_epoch_start(self) -> None:
        """Start the epoch's row empty (Lightning's step results were reset per epoch too)."""
        self._row, self._bar_keys = {}, {"loss": None}
        self._row_step, self._host_row = None, None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Write the step's row to the run's loggers when the step logs, as Lightning's logger connector wrote it:
        the same step (the global step the batch ran at), an `epoch` column, then `save()`. Runs after the callbacks'
        own `on_train_batch_end`, so a stop requested there (which logs its step) is seen."""
        it = self._row_step
        if it is None or not self._logs_at(it):
            return
        metrics: dict[str, Any] = {**self._read_row(), "epoch": self.trainer.current_epoch}
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=it)
            logger.save()

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        step = self.trainer.global_step
        meta = {"format": ckpt_lib.FORMAT, "version": ckpt_lib.VERSION, "step": step}
        if self.checkpoint_meta is not None:
            meta.update(self.checkpoint_meta(step))
        checkpoint["geodino"] = meta
        if self.fsdp is None and "optimizer_states" in checkpoint:
            # ids by module order, as FSDP2's full optimizer state: a run may resume under trainer.strategy=fsdp2
            from geodino.train.optim import key_by_module_order

            checkpoint["optimizer_states"] = [
                key_by_module_order(s, opt, self)
                for s, opt in zip(checkpoint["optimizer_states"], self.trainer.optimizers)
            ]


# logged terms shown in the progress bar beside every `*_loss` (and the total loss)
_BAR_TERMS = ("dino_local", "dino_global", "ibot", "koleo", "gram")

# values beside the loss terms that a NaN message lists when they are not finite (the rest: "and N more")
NAN_EXTRAS = 3


def nan_terms(values: dict[str, float]) -> str:
    """The words of a NaN message: every loss term (`*_loss`), then at most `NAN_EXTRAS` other values that are not
    finite (the monitors follow a NaN loss, so listing them all made the line a paragraph)."""
    import math

    out = [f"{k}={v:.4g}" for k, v in values.items() if k.endswith("_loss")]
    bad = [f"{k}={v:.4g}" for k, v in values.items() if not k.endswith("_loss") and not math.isfinite(v)]
    out += bad[:NAN_EXTRAS]
    if len(bad) > NAN_EXTRAS:
        out.append(f"and {len(bad) - NAN_EXTRAS} more values not finite")
    return ", ".join(out)


def _is_number(v: Any) -> bool:
    """A scalar worth logging: a one-element tensor or a plain int/float."""
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, int | float) and not isinstance(v, bool)
