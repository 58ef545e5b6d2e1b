"""The distillation run: set up (teacher, heads, students, optimizer, resume), then one step per batch.

Why a plain training loop and not the Lightning module of pretraining: a Lightning strategy wraps *one* model in
*one* world-wide process group and writes checkpoints from global rank 0. Multi-student distillation needs a
different model per rank range, DDP over that range's subgroup, teacher collectives over the whole world and one
checkpoint writer per student, which Lightning's strategies do not offer. The loop reuses the pretraining
pieces instead: the recipe config sections, schedules, parameter groups, per-module clipping, checkpoint
readers and the official-layout writers.

A run folder holds `config.yaml`, `schedules.png` (written at the start, once the teacher's heads, every student and
the data's first batch (not read on a re-run of a finished run) are checked; a start refused later removes them, or
puts an earlier run's back, and the folder and its missing parents if it made them), `log.csv` (one per student
folder when students train on separate ranks), the trackers of `train.loggers`, `checkpoints/`, and at the end the
exports and `curves.png` (each student's loss terms and the schedules, from log.csv).
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodino.data.config import warn_photo_flips
from geodino.errors import CheckpointError, GeoDinoError, TrainingError
from geodino.io import removes_created_dirs
from geodino.train.distill import build as b
from geodino.train.distill.config import DistillConfig
from geodino.train.distill.export import data_record, load_checkpoint, save_checkpoint
from geodino.train.distill.heads_record import agree_on_found
from geodino.train.distill.log_csv import append_row, drop_rows_from
from geodino.train.distill.placement_resume import Switch
from geodino.train.distill.run_folder import Start, probe_data, take_run_folder, undo_start, write_start_files
from geodino.train.host import host_floats
from geodino.train.rank_agreement import agreed_items, refusals_agreed
from geodino.train.resume_point import agreed_resume_point

log = logging.getLogger("geodino.distill")

__all__ = ["DistillRun", "distill", "setup"]


@dataclass
class DistillRun:
    """Everything a step needs, built once by `setup`."""

    cfg: DistillConfig
    sched: Any  # Schedules
    device: torch.device
    rank: int
    distributed: bool
    out_dir: Path
    layout: Any  # subgroups.SubgroupLayout
    arch: nn.Module  # DistillMetaArch
    opt: torch.optim.Optimizer
    patch: int
    start: int
    writer: bool  # this rank writes the logs, checkpoints and exports of its students
    ckpt_dir: Path
    log_file: Path
    resumed_from: dict[str, Path] | None = None  # each student's checkpoint, when the other placement wrote it
    norm: dict[str, Any] | None = None  # the input normalisation of the loader's sources (export.data_record)


def setup(cfg: DistillConfig) -> DistillRun:
    """Validate, join the process group, load the teacher and its heads, build the students and the optimizer,
    and resume from the newest checkpoint of `output_dir` when there is one."""
    start = Start()
    run = _setup(cfg, start)
    start.settle()
    return run


def _setup(cfg: DistillConfig, start: Start) -> DistillRun:
    """`setup`, recording in `start` what it creates or replaces (on rank 0, which writes: the run folder,
    config.yaml, schedules.png), so that a start that fails can undo it (`undo_start`), and deferring the
    housekeeping of a used folder to `start.settle`."""
    sched, device, distributed, rank, world, plan = _join_world(cfg)
    out_dir, layout, names, ckpt_dir, switch = take_run_folder(cfg, start, rank, plan)

    # the same step on every rank; refused when some ranks see checkpoints and others none (output_dir not shared)
    resume_at = agreed_resume_point(cfg.train.resume, ckpt_dir)
    if switch is not None:  # the other placement's checkpoints are newer: resumed from them (`placement_resume`)
        resume_at = (resume_at[0], switch.step)
    # the teacher and its heads (or the word that a warm-up makes them), every student (patch size, prototype counts,
    # build options, init_from) and the data are checked before anything is written and before any warm-up work;
    # each rank reads its own files (node-local copies): a refusal on any rank stops every rank in its line
    with refusals_agreed():
        torch.manual_seed(cfg.train.seed)
        teacher, fb = b.load_teacher(cfg.teacher.spec, device)
        patch = int(teacher.patch_size)
        found = b.find_heads(cfg, teacher, fb, out_dir, resuming=resume_at[1] > 0)
        init_states = b.check_students(cfg, teacher, *b.head_prototypes(cfg, found), keep=layout.students)
        if resume_at[1] < cfg.train.max_steps:  # a finished run's re-run trains on no batch: none is read to check
            probe_data(cfg, patch, int(teacher.in_chans), layout.data_batch)  # unreadable, nodata or band count
            if rank == 0:  # photos given the overhead flips as crops.vflips/rot90 were left unset: once, start checked
                warn_photo_flips(cfg)
    if distributed:  # every rank warms heads up, or none (a node-local output_dir: rank 0's teacher.heads.pth only)
        found = agree_on_found(found, resuming=resume_at[1] > 0)
    with refusals_agreed():  # rank 0 writes (a full disk): the others stop with it
        if rank == 0:
            at = resume_at[1]
            write_start_files(cfg, out_dir, sched, start, resuming=at > 0, finished=at >= cfg.train.max_steps)

    teacher, t_dino, t_ibot = _fast_teacher_and_heads(
        cfg, teacher, fb, out_dir, found, device, layout, patch, rank, world, distributed
    )
    del found
    arch = _build_meta_arch(cfg, teacher, t_dino, t_ibot, layout, init_states, device)
    opt = b.build_optimizer(cfg, arch)

    writer = layout.subgroup_rank == 0 if not layout.colocated else rank == 0
    step = _resume(cfg, arch, opt, ckpt_dir, resume_at, writer, start, switch)
    if rank == 0 and step > 0:  # as pretraining says its resume (the logger alone is not on the console)
        where = switch.paths[names[0]] if switch else resume_at[0].get(step, ckpt_dir)
        done = ": the run is already complete, nothing to train" * (step >= cfg.train.max_steps)  # as pretraining
        print(f"geodino: resuming from {where} at step {step} of {cfg.train.max_steps}{done}", file=sys.stderr)
    _wrap_ddp(arch, layout, device, distributed)
    log_file = (out_dir / "log.csv") if writer and layout.colocated else (out_dir / names[0] / "log.csv")
    if rank == 0 and step == 0:  # an export that would be mostly the students' init: said before the run
        _warn_short_ema(cfg, sched)
    if writer and switch is not None and step < cfg.train.max_steps:  # the new placement's log.csv from the old's
        start.later.append(partial(switch.carry_logs, out_dir, [s.name for s in cfg.students], names))
    if writer:  # a killed run logged steps past its last checkpoint: they run again
        start.later.append(lambda: drop_rows_from(log_file, step))
    run = (cfg, sched, device, rank, distributed, out_dir, layout, arch, opt, patch, step, writer, ckpt_dir, log_file)
    return DistillRun(*run, resumed_from=switch.paths if switch else None)


def _warn_short_ema(cfg: DistillConfig, sched: Any) -> None:
    """One warning when the exported EMA keeps more than 10 % of the students' initial weights (`ema_share`)."""
    import warnings

    from geodino.models.caller import user_stacklevel
    from geodino.train.distill.ema_share import short_ema_warning

    message = short_ema_warning(cfg, sched)
    if message is not None:
        warnings.warn(message, stacklevel=user_stacklevel())


def _join_world(cfg: DistillConfig) -> tuple[Any, torch.device, bool, int, int, Any]:
    """Check the config, files and schedules, join the process group and plan the students' subgroups (the same
    answer on every rank, before anything is written): schedules, device, distributed, rank, world, plan."""
    import torch.distributed as dist

    from geodino.train.subgroups import plan_subgroups

    cfg.validate()
    sched = b.build_schedules(cfg)  # schedule errors (lengths) before any work
    b.srun_world()  # srun with several tasks and no torchrun: torchrun's variables from SLURM's
    device = b.init_distributed(cfg)  # the device agreed by every rank while joining (a rank without a GPU: one line)
    with refusals_agreed():  # after joining: a file missing on one node stops every rank (none waits to join)
        b.check_files(cfg)
    distributed = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    students_cfg = [
        {"name": s.name, "ranks": list(s.ranks) if s.ranks else None, "share": s.share} for s in cfg.students
    ]
    plan = plan_subgroups(students_cfg, world, cfg.train.global_batch_size)
    b.check_koleo_groups(cfg, plan, world)  # the same answer on every rank, before anything is written
    return sched, device, distributed, rank, world, plan


def _fast_teacher_and_heads(
    cfg: DistillConfig,
    teacher: Any,
    fb: Any,
    out_dir: Path,
    found: Any,
    device: torch.device,
    layout: Any,
    patch: int,
    rank: int,
    world: int,
    distributed: bool,
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The frozen teacher on its fast inference path and its DINO/iBOT heads (warmed up when it has none), on
    `device` on every rank: teacher, DINO head, iBOT head."""
    import torch.distributed as dist

    warmup_batch = max(layout.data_batch, 2)

    def warmup_batches():  # data-parallel warm-up: every rank reads its own shard, each batch agreed (a tile
        # only this rank cannot read stops every rank in its line, not the others waiting in the step's collectives)
        return agreed_items(partial(b.make_batches, cfg, patch, 0, rank, world, warmup_batch))

    # the frozen teacher on the fast inference path; the eager model is dropped (one copy of the weights in memory)
    teacher, path = b.fast_teacher(cfg, teacher, device, layout.data_batch)
    fb.model = teacher
    t_dino, t_ibot, heads_src = b.teacher_heads(
        cfg,
        teacher,
        fb,
        out_dir,
        warmup_batches,
        write=rank == 0,
        warmup_batch=warmup_batch,
        step_batch=layout.data_batch,
        found=found,
    )
    if distributed:
        dist.barrier()
    t_dino, t_ibot = t_dino.to(device), t_ibot.to(device)
    path = getattr(teacher, "path", path)  # the heads warm-up may have widened the compile decision
    log.info("teacher %s, heads from %s, inference path %s", cfg.teacher.spec, heads_src, path.name)
    if rank == 0:  # on the console as embed and probe say theirs (GEODINO_FAST=0 / teacher.fast=off turn it off)
        print(f"geodino: teacher heads from {heads_src}", file=sys.stderr)
        print(f"geodino: teacher inference path {path.name} ({path.reason})", file=sys.stderr)
    return teacher, t_dino, t_ibot


def _build_meta_arch(
    cfg: DistillConfig,
    teacher: Any,
    t_dino: torch.Tensor,
    t_ibot: torch.Tensor,
    layout: Any,
    init_states: dict[int, Any],
    device: torch.device,
) -> nn.Module:
    """This rank's students around the teacher (`DistillMetaArch`), in train mode, with activation checkpointing."""
    from geodino.train.activation_checkpointing import apply_activation_checkpointing
    from geodino.train.distill_arch import DistillLossWeights, DistillMetaArch

    torch.manual_seed(cfg.train.seed + 1)
    students: dict[str, nn.Module] = {}
    for i in layout.students:
        spec = cfg.students[i]
        students[spec.name] = b.build_student(spec, i, teacher, t_dino, t_ibot, init_states.pop(i, None)).to(device)
    weights = DistillLossWeights(
        dino=cfg.dino.loss_weight,
        ibot=cfg.ibot.loss_weight,
        koleo=cfg.koleo.loss_weight,
        global_ignore_diagonal=cfg.dino.global_ignore_diagonal,
        student_temp=cfg.dino.student_temp,
        sinkhorn_iterations=cfg.dino.sinkhorn_iterations,
        ibot_student_temp=cfg.ibot.student_temp,
        ibot_sinkhorn_iterations=cfg.ibot.sinkhorn_iterations,
        koleo_distributed=cfg.koleo.distributed,
        koleo_group_size=cfg.koleo.group_size,
        koleo_topk=cfg.koleo.topk,
    )
    arch = DistillMetaArch(teacher, t_dino, t_ibot, students, weights, layout, cfg.crops.n_global).to(device)
    arch.train()
    for st in arch.students.values():  # after the EMA copies were made: those never run backward
        apply_activation_checkpointing(st.backbone.blocks, cfg.train.activation_checkpointing)
    return arch


def _resume(
    cfg: DistillConfig,
    arch: nn.Module,
    opt: torch.optim.Optimizer,
    ckpt_dir: Path,
    at: tuple[dict[int, Path], int],
    writer: bool = True,
    start: Start | None = None,
    switch: Switch | None = None,
) -> int:
    """The step to start from: 0, or the newest checkpoint step every student has (`train.resume=auto`; `at`: this
    folder's checkpoints and that step, `agreed_resume_point`; `switch`: the other placement's checkpoints to load,
    `placement_resume`). A
    student whose folder holds later checkpoints than that step (another student's save was cut short) moves them
    aside (`writer`: the rank that writes this folder; once the start is accepted when `start` is given), so that
    its `keep_last` does not delete the new ones."""
    if cfg.train.resume != "auto":
        return 0
    from geodino.train.checkpointing import abandon_and_say

    found, step_found = at
    if writer and found and max(found) > step_found:
        why = f"every student resumes from step {step_found}"
        move = partial(abandon_and_say, ckpt_dir, step_found, found.get(step_found), why)
        if start is None:
            move()
        else:
            start.later.append(move)
    if step_found == 0:
        return 0
    if switch is not None:  # written with the other placement of the students: loaded by parameter name
        return switch.load(arch, opt)
    if step_found not in found:
        raise CheckpointError(
            f"students disagree on the resume step ({step_found} is missing in {ckpt_dir}); "
            "remove the newer checkpoints of the other students or start a new output_dir"
        )
    start = load_checkpoint(found[step_found], arch, opt)
    log.info("resumed from %s at step %d", found[step_found], start)
    return start


def _wrap_ddp(arch: nn.Module, layout: Any, device: torch.device, distributed: bool) -> None:
    """Students trained by several ranks are called through DDP over their subgroup."""
    callers: dict[str, nn.Module] = dict(arch.students.items())
    if distributed:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        for name, st in arch.students.items():
            if dist.get_world_size(layout.group) > 1:
                callers[name] = DDP(
                    st, process_group=layout.group, device_ids=[device.index] if device.type == "cuda" else None
                )
    arch.callers = callers  # type: ignore[assignment]


def train_step(run: DistillRun, step: int, batch: dict[str, Any]) -> dict[str, Any]:
    """One optimizer step of every student of this rank on `batch`; returns the log row (losses and gradient norms
    as device tensors, read by `host_floats` only on the steps that log: the step itself reads one value, the loss
    for the NaN guard)."""
    from geodino.data.collate import crops_on
    from geodino.train.optim import apply_optim_schedule, clip_grad_per_module

    cfg, arch, device = run.cfg, run.arch, run.device
    if "step" in batch and int(batch["step"]) != step:
        raise TrainingError(f"data loader yielded the batch of step {int(batch['step'])} at step {step}")
    torch.manual_seed((cfg.train.seed * 1_000_003 + step * 7919 + run.rank) % (2**63 - 1))
    v = run.sched.at(step)
    apply_optim_schedule(run.opt, v["lr"], v["weight_decay"], v["last_layer_lr"])
    arch.weights.dino_local = float(v.get("dino_local_weight", 1.0))
    inputs: dict[str, Any] = crops_on(batch, device)  # applies a pending photometric step on the device
    masks = b.student_masks(cfg, batch, run.layout.student_batch, run.patch, step, run.rank)
    # the loader's (pinned on CUDA) or freshly drawn masks: copies queued without waiting for the device
    inputs.update({k: (t.to(device, non_blocking=True) if torch.is_tensor(t) else t) for k, t in masks.items()})
    amp = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if cfg.train.precision == "bf16-mixed"
        else nullcontext()
    )
    with amp:
        loss, metrics = arch.forward_backward(inputs, v["teacher_temp"], cfg.train.global_batch_size)
    # every rank decides together (one flag all-reduced; every rank calls it): DDP has all-reduced a NaN gradient
    # into the ranks whose own loss is finite, and a rank stopping alone left the others stepping and then waiting
    here = not math.isfinite(float(loss))
    if _any_rank(here) if run.distributed else here:
        terms = ", ".join(f"{k}={x:.4g}" for k, x in host_floats(metrics).items())
        what = f"loss is {float(loss)}" if here else "the loss of another process is not finite"
        raise TrainingError(
            f"{what} at step {step} ({terms}); "
            # not "resume": a resume keeps the recipe (check_resume_config) and, being exact, reaches this loss again
            f"lower schedules.lr.end or optim.clip_grad and start again in a new output_dir (a resume keeps the recipe "
            f"and would reach this loss again)"
        )
    norms = {}
    for name, st in arch.students.items():
        n = clip_grad_per_module(
            {"backbone": st.backbone, "dino_head": st.dino_head, "ibot_head": st.ibot_head}, cfg.optim.clip_grad
        )
        norms.update({f"{name}/grad_norm/{k}": x for k, x in n.items()})
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    arch.update_ema(v["momentum"])
    sched = {"lr": v["lr"], "momentum": v["momentum"], "teacher_temp": v["teacher_temp"]}
    return {"step": float(step), **metrics, **norms, **sched}


@removes_created_dirs
def distill(cfg: DistillConfig) -> dict[str, Path]:
    """Run a distillation; return `{student name: exported .pth}` for the students this process trained. The run
    folder's lock is released (its `.geodino.lock` removed) when the run ends or fails, so a notebook that runs
    `distill` leaves no folder locked behind it; a start refused with a geodino error leaves the file system as it
    was (`run_folder.undo_start`, and the empty folders it made removed, as `pretrain` does)."""
    from geodino.run_lock import release_run_folder
    from geodino.train.stop import requeue_outside_steps

    try:
        with requeue_outside_steps(cfg.train.slurm_auto_requeue):  # SIGUSR1 in the start-up or warm-up
            return _distill(cfg)
    finally:
        release_run_folder(Path(cfg.output_dir).expanduser())  # a no-op where this process took no lock


def _distill(cfg: DistillConfig) -> dict[str, Path]:
    """`distill` while this process holds the run folder (`setup` takes it on rank 0)."""
    from tqdm.auto import tqdm

    from geodino.train.stop import StopRequest, end_stopped_run, stop_signals

    start = Start()
    try:
        run = _setup(cfg, start)
        with refusals_agreed():  # this rank's shard, extent or trackers refused: every rank stops in its line
            loader = b.make_loader(cfg, run.patch, run.start, run.rank, dist_world(), run.layout.data_batch)
            batches = iter(loader)
            run.norm, extent = data_record(cfg, loader.sources), None
            if run.writer:  # the students' STAC items: the distillation data's extent with the teacher's
                from geodino.train.data_extent import training_extent

                extent = training_extent(loader.sources, cfg.teacher.spec)
            if run.start < cfg.train.max_steps:  # this rank's first tiles (not the probe's) unreadable: undone too
                # no second band check: the probe's covers every batch (the sources must agree on one band count,
                # each source on its files', and a photo of another count is refused where it is read)
                batches = itertools.chain([next(batches)], batches)
            trackers = _trackers(run) if run.writer and run.start < cfg.train.max_steps else []  # re-run: no log
    except GeoDinoError:
        undo_start(Path(cfg.output_dir).expanduser(), start)
        raise
    start.settle()  # the used folder's housekeeping, now that the run goes ahead
    last = cfg.train.max_steps - 1
    save = partial(
        save_checkpoint, run.ckpt_dir, run.arch, run.opt, cfg=cfg, keep_last=cfg.train.keep_last, norm=run.norm
    )
    bar = tqdm(
        range(run.start, cfg.train.max_steps),
        desc="distill",
        initial=run.start,
        total=cfg.train.max_steps,
        disable=not (cfg.train.progress_bar and run.writer),
    )
    # Ctrl-C / SIGTERM (and SLURM's SIGUSR1 with train.slurm_auto_requeue): finish the step, save it, stop (and
    # requeue the job); the requeued job resumes from that checkpoint (train.resume=auto) (geodino.train.stop)
    stop = StopRequest(stop_signals(cfg.train.slurm_auto_requeue))
    with stop:
        for step in bar:
            row = train_step(run, step, next(batches))
            if run.writer and (step % cfg.train.log_every_n_steps == 0 or step == last):
                row = {**host_floats(row), "step": step}
                append_row(run.log_file, row)
                for tracker in trackers:
                    tracker.log_metrics({k: v for k, v in row.items() if k != "step"}, step=step)
                bar.set_postfix(loss=f"{row['loss']:.3f}")
            done = step + 1
            periodic = done % cfg.train.checkpoint_every_n_steps == 0 or done == cfg.train.max_steps
            if run.writer and periodic:
                save(done)
            # after every step, as pretraining (Lightning's reduce_boolean_decision): the one-flag all-reduce comes
            # right after the NaN guard has waited for the step anyway, and DDP's gradient all-reduce already syncs
            # the ranks each step, so agreeing every N steps saved little and stopped up to N - 1 steps late
            if done < cfg.train.max_steps and stop.agreed(_any_rank if run.distributed else None):
                saved = None
                if run.writer:
                    saved = run.ckpt_dir / f"step_{done:08d}.ckpt"
                    if not periodic:
                        saved = save(done)
                bar.close()
                if run.distributed:
                    import torch.distributed as dist

                    dist.barrier()
                end_stopped_run(done, cfg.train.max_steps, stop.signal, saved, rank_zero=run.rank == 0)
                raise KeyboardInterrupt
    if stop.signal is not None:  # it came during the last step: nothing left to stop, the run is complete
        from geodino.train.stop import say_completed

        say_completed(cfg.train.max_steps, stop.signal)
    exports: dict[str, Path] = {}
    if run.writer:  # a finished run's re-run leaves the exports and curves.png that stay the same untouched
        from geodino.train.distill.finish import finish_run

        exports = finish_run(run, extent, trackers)
    if run.distributed:
        import torch.distributed as dist

        dist.barrier()
    return exports


def _trackers(run: DistillRun) -> list[Any]:
    """The Lightning loggers of `train.loggers` other than csv (log.csv is always written), in the log's folder."""
    from geodino.config import to_dict
    from geodino.train.loggers import build_loggers

    names = [n for n in run.cfg.train.loggers if n != "csv"]
    if not names:
        return []
    folder = run.log_file.parent
    run_name = run.out_dir.name if folder == run.out_dir else f"{run.out_dir.name}-{folder.name}"
    options = {k: v for k, v in run.cfg.train.logger_options.items() if k in names}
    trackers = build_loggers(names, folder, run_name=run_name, options=options, key="train.loggers")
    for tracker in trackers:
        tracker.log_hyperparams(to_dict(run.cfg))
    return trackers


def _any_rank(wanted: bool) -> bool:
    """Whether any rank wants it (an all-reduce of one flag), so that every rank stops at the same step."""
    import torch.distributed as dist

    flag = torch.tensor([int(wanted)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def dist_world() -> int:
    """Processes in the run (1 without torch.distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
