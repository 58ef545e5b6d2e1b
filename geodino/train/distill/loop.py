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

This module runs the steps (`distill`); the set-up that builds the `DistillRun` is `run_setup`'s, one step
`step`'s (`setup` and `train_step` stay importable from here).
"""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import Any

from geodino.errors import GeoDinoError
from geodino.io import removes_created_dirs
from geodino.train.distill import build as b
from geodino.train.distill.config import DistillConfig
from geodino.train.distill.export import data_record, save_checkpoint
from geodino.train.distill.log_csv import append_row
from geodino.train.distill.run_folder import Start, undo_start
from geodino.train.distill.run_setup import DistillRun, setup, setup_recorded
from geodino.train.distill.step import any_rank, train_step
from geodino.train.host import host_floats
from geodino.train.rank_agreement import refusals_agreed

__all__ = ["DistillRun", "distill", "setup", "train_step"]


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
    from geodino.progress import progress_bar
    from geodino.train.stop import StopRequest, end_stopped_run, stop_signals

    start = Start()
    try:
        run = setup_recorded(cfg, start)
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
    bar = progress_bar(
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
            if done < cfg.train.max_steps and stop.agreed(any_rank if run.distributed else None):
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
    if run.rank == 0:  # for the "distillation done" line rank 0 prints: the corrupt images its loader replaced
        from geodino.train.data_note import corrupt_note, keep

        keep(Path(cfg.output_dir).expanduser(), corrupt_note(loader, dist_world()))
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


def dist_world() -> int:
    """Processes in the run (1 without torch.distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
