"""The set-up of a distillation run (`setup`): validate, join the process group and plan the students' subgroups,
take the run folder, load the teacher and its heads (warmed up when it has none), build the students and the
optimizer, resume from the newest checkpoint and wrap students trained by several ranks in DDP: the `DistillRun`
every step uses."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from geodino.data.config import warn_photo_flips
from geodino.errors import CheckpointError
from geodino.train.distill import build as b
from geodino.train.distill.config import DistillConfig
from geodino.train.distill.export import load_checkpoint
from geodino.train.distill.heads_record import agree_on_found
from geodino.train.distill.log_csv import drop_rows_from
from geodino.train.distill.placement_resume import Switch
from geodino.train.distill.run_folder import Start, probe_data, take_run_folder, write_start_files
from geodino.train.rank_agreement import agreed_items, refusals_agreed
from geodino.train.resume_point import agreed_resume_point

if TYPE_CHECKING:
    from geodino.models.heads import DINOHead
    from geodino.train.distill_arch import DistillMetaArch, DistillStudent

log = logging.getLogger("geodino.distill")


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
    arch: DistillMetaArch
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
    run = setup_recorded(cfg, start)
    start.settle()
    return run


def setup_recorded(cfg: DistillConfig, start: Start) -> DistillRun:
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
) -> tuple[Any, DINOHead, DINOHead]:
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
    t_dino: DINOHead,
    t_ibot: DINOHead,
    layout: Any,
    init_states: dict[int, Any],
    device: torch.device,
) -> DistillMetaArch:
    """This rank's students around the teacher (`DistillMetaArch`), in train mode, with activation checkpointing."""
    from geodino.train.activation_checkpointing import apply_activation_checkpointing
    from geodino.train.distill_arch import DistillLossWeights, DistillMetaArch

    torch.manual_seed(cfg.train.seed + 1)
    students: dict[str, DistillStudent] = {}
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
        # the student ViT's blocks (attributes of ModuleDict entries, typed Tensor | Module)
        apply_activation_checkpointing(st.backbone.blocks, cfg.train.activation_checkpointing)  # type: ignore[union-attr, arg-type]
    return arch


def _resume(
    cfg: DistillConfig,
    arch: DistillMetaArch,
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
    step = load_checkpoint(found[step_found], arch, opt)
    log.info("resumed from %s at step %d", found[step_found], step)
    return step


def _wrap_ddp(arch: DistillMetaArch, layout: Any, device: torch.device, distributed: bool) -> None:
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
    arch.callers = callers
