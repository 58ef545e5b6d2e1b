"""`pretrain(cfg)`: one DINOv3 SSL stage (pretrain, Gram anchoring or high-res adaptation) from a config.

A run folder (`output_dir`) holds `config.yaml` (exactly what ran), `checkpoints/step_*.ckpt` + `last.ckpt`,
`logs/metrics.csv`, `tensorboard/` (or the trackers in `trainer.loggers`), `schedules.png` (every schedule over
the run, written at the start) and, at the end, `curves.png` (losses against ln K and the plateau diagnostics)
and `export/teacher.{pth,safetensors,heads.pth}`.
Running the same command again resumes from the newest checkpoint (`checkpoint.resume=auto`), which is also
what a SLURM requeue does.

Stages chain through `init_from`: the Gram stage starts from the pretrain stage's checkpoint and the high-res
stage from the Gram stage's; student, teacher and Gram teacher start from the previous stage's teacher (as the
official high-res stage does). `init_from` may also be an official backbone release: its heads are not public,
so fresh heads are trained first for `head_warmup_steps` iterations with the backbone frozen.

This module runs a stage (`pretrain`); what it is built from is in `pretrain_build`, its run folder and resume
checks in `pretrain_folder`, the start from `init_from` in `pretrain_init`, its start files and lines in
`pretrain_start`, the fit and the end of the run in `pretrain_fit`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError, GeoDinoError, plural
from geodino.io import removes_created_dirs
from geodino.train.config import PRECISIONS, STRATEGIES, CheckpointConfig, PretrainConfig, TrainerConfig
from geodino.train.pretrain_build import (
    build_arch,
    build_module,
    check_data_fits,
    loader_factory,
    probe_data,
    world_size,
)
from geodino.train.pretrain_folder import check_resume, prepare_output, process_rank
from geodino.train.pretrain_init import adopt_init_architecture, apply_init_from
from geodino.train.pretrain_start import accelerator_device, announce_start, join_launched_group, write_start_files
from geodino.train.resume_point import agreed_resume_point
from geodino.train.run_start import Start, undo_start

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "CheckpointConfig",
    "PretrainConfig",
    "TrainerConfig",
    "check_data_fits",
    "pretrain",
    "replace",
    "world_size",
]


def _check_koleo_groups(cfg: PretrainConfig) -> None:
    """KoLeo groups must tile the batch (the loss's own rule, checked before anything is written): a group lies
    inside one process's batch, or spans whole batches of several processes and divides the global batch."""
    k = cfg.ssl.koleo
    if not k.distributed or k.group_size is None:
        return
    from geodino.losses.koleo import groups_tile

    local, size = cfg.batch_size, k.group_size
    world = world_size(cfg)
    if groups_tile(local, world, size):
        return
    raise ConfigError(
        f"ssl.koleo.group_size={size} does not tile batches of batch_size={local} on "
        f"{plural(world, 'process', 'processes')} (global "
        f"batch {local * world}); use a batch_size that is a multiple of {size}, a global batch divisible by it, "
        "or set ssl.koleo.group_size to a divisor of batch_size (null: the whole batch)"
    )


@removes_created_dirs
def pretrain(cfg: PretrainConfig) -> Path:
    """Run one SSL stage as configured; return the run folder (`output_dir`).

    Resumes from the newest checkpoint in `output_dir` when there is one (`checkpoint.resume=auto`), so a killed
    or requeued run continues where it stopped and ends with the same weights as an uninterrupted one. The run
    folder's lock is released (and its `.geodino.lock` removed) when the run ends or fails, also at start-up. A start
    refused with a geodino error (data, band count, resume checkpoint, init_from, ...) leaves the file system as it
    was: a used folder byte for byte (its housekeeping waits until every check passed, `geodino.train.run_start`),
    a new one removed with the missing folders above it. SLURM's SIGUSR1 outside the steps requeues at once."""
    from geodino.run_lock import release_run_folder
    from geodino.train.stop import requeue_outside_steps

    try:
        with requeue_outside_steps(cfg.trainer.slurm_auto_requeue):  # the steps' StopRequest takes it over
            return _pretrain(cfg)
    finally:
        release_run_folder(Path(cfg.output_dir).expanduser())


def _pretrain(cfg: PretrainConfig) -> Path:
    """`pretrain` while this process holds the run folder (`prepare_output` takes it)."""
    import torch

    from geodino.train.rank_agreement import refusals_agreed

    head_warmup = _check_schedules(cfg)
    join_launched_group(cfg, world_size(cfg))  # launched as several processes: the checks below are agreed
    start = Start()  # what the start changes in the run folder: undone if it is refused, housekeeping deferred
    try:
        # each rank reads its own init_from, run folder and data (a node-local disk): a refusal on some ranks stops
        # every rank in one line (no block calls a collective; Lightning's group is joined above)
        with refusals_agreed():
            accelerator_device(cfg.trainer.accelerator)  # no GPU for trainer.accelerator=gpu: one line, before a folder
            init_src = adopt_init_architecture(cfg)  # ssl.student.arch: from_init (before the architecture is read)
            out, resume = prepare_output(cfg, start)
        max_steps = cfg.trainer.max_steps
        # the step it resumes from by the checkpoints' names, as distillation finds it; several processes: every rank
        # sees the same newest checkpoint (Lightning resumes each from its own copy), else one line on every rank
        finished = agreed_resume_point(cfg.checkpoint.resume, out / "checkpoints", same_step=True)[1] >= max_steps
        with refusals_agreed():
            torch.manual_seed(cfg.seed)
            arch = build_arch(cfg)
            backbone_config = dict(getattr(arch.student["backbone"], "config", {}) or {})
            factory = loader_factory(cfg)
            # a finished run's re-run trains on no batch: none is read
            extent, norm = (None, None) if finished else probe_data(cfg)
            if not finished and process_rank() == 0:  # photos given the overhead flips (crops.vflips/rot90 unset): once
                from geodino.data.config import warn_photo_flips

                warn_photo_flips(cfg)

            init_lines: list[str] = []
            post_init = None
            resume_step = None
            if resume is not None:
                resume_step = check_resume(cfg, out, resume, backbone_config, start)
            elif cfg.init_from:
                init_lines, post_init = apply_init_from(cfg, arch, init_src, head_warmup)
                init_src = None
            done = isinstance(resume_step, int) and resume_step >= max_steps
            if finished and not done:
                extent, norm = probe_data(cfg)  # the newest checkpoint's name said finished, the step saved does not

            from geodino.train.module import build_trainer  # Lightning (seconds to import): after the data's checks

            module = build_module(cfg, arch, factory, out, backbone_config, extent, head_warmup, post_init, norm)
            # a finished run's re-run logs nothing: no logger starts a run (TensorBoard file, W&B or MLflow run)
            trainer, ckpt_cb = build_trainer(cfg.trainer, cfg.checkpoint, out, run_name=cfg.name, loggers=not done)
        with refusals_agreed():  # rank 0 writes (a full disk): the others stop with it
            if trainer.is_global_zero:
                write_start_files(cfg, out, arch, start, resume, resume_step)
    except GeoDinoError:
        undo_start(Path(cfg.output_dir).expanduser(), start)
        raise
    from geodino.train.pretrain_fit import finish_run, fit

    start.settle()  # the used folder's housekeeping, now that the run goes ahead (before Lightning looks at it)
    if trainer.is_global_zero:
        announce_start(cfg, init_lines, head_warmup, resume, resume_step)
    fit(trainer, module, resume)
    finish_run(cfg, out, trainer, ckpt_cb)
    return out


def _check_schedules(cfg: PretrainConfig) -> int:
    """Validate the config and its schedules before the run folder is made; the head warm-up in steps."""
    cfg.validate()
    _check_koleo_groups(cfg)
    from geodino.train.schedules import Schedules, resolve_iters

    # schedule lengths that do not fit the run fail here, naming full keys, before the run folder is made
    Schedules.build(cfg.ssl, cfg.trainer.max_steps, cfg.batch_size, prefix="ssl.")

    return resolve_iters(cfg.head_warmup_steps, cfg.trainer.max_steps, "head_warmup_steps")


def replace(cfg: PretrainConfig, **changes: Any) -> PretrainConfig:
    """A copy of `cfg` with top-level fields changed (handy in notebooks and tests)."""
    return dataclasses.replace(cfg, **changes)
