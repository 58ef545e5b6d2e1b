"""A distillation run's folder at the start: made and locked, the resume choice checked against it (`take_run_folder`,
`refuse_used_folder`; the step it resumes from is `geodino.train.resume_point`, or the other placement's:
`placement_resume.other_placement`), the data read once unless the run is finished (`probe_data`), config.yaml and
schedules.png written once teacher, students and data are checked (`write_start_files`), and what the start wrote
undone when it is refused (`undo_start`): new files and folders removed, replaced ones restored. The housekeeping of
a used folder (half-written checkpoints removed, later checkpoints moved aside, log rows past the resume step
dropped, staging folders of earlier versions swept) waits in `Start.later` until the start is accepted
(`Start.settle`), so a refused start leaves a used folder as it found it. `Start` and `undo_start` are pretraining's
too (`geodino.train.run_start`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from geodino.train.distill.config import DistillConfig
from geodino.train.distill.export import check_resume_config, checkpoint_dir
from geodino.train.distill.placement_resume import Switch, other_placement
from geodino.train.run_start import Start, undo_start

__all__ = [
    "Start",
    "check_bands",
    "probe_data",
    "refuse_used_folder",
    "sweep_old_staging",
    "take_run_folder",
    "undo_start",
    "write_start_files",
]

log = logging.getLogger("geodino.distill")


def take_run_folder(
    cfg: DistillConfig, start: Start, rank: int, plan: Any
) -> tuple[Path, Any, list[str], Path, Switch | None]:
    """Make and lock the run folder, form the subgroups and check the resume choice against the folder (clearing
    half-written checkpoints waits in `start.later`): run folder, subgroup layout, this rank's student names,
    checkpoint folder, and the other placement's checkpoints to resume from (`placement_resume.other_placement`:
    a relaunch with the other placement of the students, whose checkpoints are of a later step than this one's)."""
    from geodino.config import to_dict
    from geodino.io import make_dirs
    from geodino.run_lock import lock_run_folder
    from geodino.train.checkpointing import latest_checkpoint
    from geodino.train.rank_agreement import agree_on_refusal, gather_ints
    from geodino.train.subgroups import init_subgroups

    refusal: Exception | None = None
    try:  # this rank's own checks first (its file system): agreed before the first collective
        fresh = not Path(cfg.output_dir).expanduser().exists()
        out_dir = make_dirs(Path(cfg.output_dir).expanduser(), what="output_dir")
        if rank == 0:
            lock_run_folder(out_dir)
            if fresh:  # listed once this run holds it: no other run writes into it
                start.made.append(out_dir)
    except Exception as exc:
        refusal = exc
    agree_on_refusal(refusal)  # a rank refused (the lock, the folder): every rank stops in its line
    layout = init_subgroups(plan, cfg.train.global_batch_size, len(cfg.students))

    names = [cfg.students[i].name for i in layout.students]
    ckpt_dir = checkpoint_dir(out_dir, names, layout.colocated)
    if (layout.subgroup_rank == 0) if not layout.colocated else rank == 0:
        start.later.append(lambda: _clear_partial_checkpoints(ckpt_dir))
    if rank == 0:  # once the start is accepted, as the rest of the used folder's housekeeping
        start.later.append(lambda: sweep_old_staging(out_dir, [s.name for s in cfg.students]))
    switch = None
    if cfg.train.resume == "auto":  # every rank reads every student's folder; several ranks: their steps must agree
        gather = gather_ints if layout.world_size > 1 else None
        switch, both = other_placement(out_dir, [s.name for s in cfg.students], layout.colocated, gather)
        if both and rank == 0:
            log.warning("%s", both)
    try:  # each rank reads its own folder (node-local disks, its own student's checkpoints): agreed as above
        newest = next(iter(switch.paths.values())) if switch else latest_checkpoint(ckpt_dir)
        if cfg.train.resume == "auto" and newest is not None:
            check_resume_config(newest, to_dict(cfg), out_dir)  # before config.yaml and data_paths.json are rewritten
        if cfg.train.resume == "never":
            refuse_used_folder(out_dir, [s.name for s in cfg.students])
    except Exception as exc:
        refusal = exc
    agree_on_refusal(refusal)
    return out_dir, layout, names, ckpt_dir, switch


def _clear_partial_checkpoints(ckpt_dir: Path) -> None:
    """Remove the checkpoints killed runs were writing (never complete), files or folders, by the writer-aware sweep
    `io_temps.sweep_held_folder`: this writer alone writes checkpoints into `ckpt_dir` (the run folder is locked), so
    a checkpoint's temporary (`.step_N.tmp-TAG-PID.ckpt`, `last.ckpt`'s link) is a killed run's unless its writer
    runs here; any other temporary goes only when its writer is gone. Before, every `.*.tmp-*` was unlinked, a live
    writer's too, and one that was a folder raised IsADirectoryError."""
    from geodino.io_temps import sweep_held_folder

    sweep_held_folder(ckpt_dir, held=lambda target: target.endswith(".ckpt"))


def refuse_used_folder(out_dir: Path, names: list[str]) -> None:
    """`train.resume=never` in a folder that holds checkpoints (any student's, so every rank answers alike): refused,
    as pretraining does. Started from step 0 there, the run pruned its own new checkpoints as older than the earlier
    run's (keep_last keeps the highest steps), wiped its log.csv, and a later `auto` resumed the earlier run."""
    from geodino.errors import InputError
    from geodino.train.checkpointing import latest_checkpoint

    for folder in dict.fromkeys(checkpoint_dir(out_dir, [n], c) for n in names for c in (True, False)):
        if (found := latest_checkpoint(folder)) is not None:
            raise InputError(
                f"output_dir {out_dir} already holds checkpoints ({found.relative_to(out_dir)}); resume with "
                "train.resume=auto or choose another output_dir"
            )


def write_start_files(
    cfg: DistillConfig, out_dir: Path, sched: Any, start: Start, resuming: bool = False, finished: bool = False
) -> None:
    """Rank 0, once teacher, students and data are checked: config.yaml, schedules.png and data_paths.json (what
    each data path names, so that a moved data folder with the same files resumes: `resume_paths`); each listed in
    `start.made` when new, an earlier run's kept in `start.replaced`, to be put back if the start is refused.
    `resuming` (from a checkpoint): data_paths.json is kept, unlisted, when the run folder's config.yaml spells
    every data path as this run does (listing every file costs minutes over millions of files), as pretraining.
    `finished` (a re-run of a finished run: nothing trains): none of them is written, as pretraining, so that
    config.yaml keeps saying what ran (a re-run may change logging or workers); a folder without config.yaml gets
    them again."""
    from geodino.config import save_config
    from geodino.io import atomic_path
    from geodino.train.pretrain_start import previous_config
    from geodino.train.resume_paths import STAMP, write_data_stamp

    if finished and (out_dir / "config.yaml").is_file():
        return
    before = previous_config(out_dir) if resuming else None  # read before config.yaml is rewritten
    start.keep(out_dir / "config.yaml", out_dir / "schedules.png", out_dir / STAMP)
    with atomic_path(out_dir / "config.yaml") as tmp:
        save_config(cfg, tmp)
    write_data_stamp(cfg, out_dir, unchanged_from=before)
    log.info("schedules: %s", sched.plot(out_dir / "schedules.png"))


# what earlier geodino versions staged in the run folder (a finished re-run's export compare, the data stamp's
# copy) and left there when killed: `tempfile` folders (8 characters of its alphabet), and `temp_name`s of
# NAME.export-check (and data_paths.json's `.stage` sibling, which the stamp's own sweep matches)
_TEMPFILE = r"[a-z0-9_]{8}"


def sweep_old_staging(out_dir: Path, names: list[str]) -> list[Path]:
    """Rank 0, once the start is accepted (it holds the run folder's lock: no other run writes there): remove the
    staging folders earlier geodino versions left in `out_dir` (`.NAME.export-check-XXXXXXXX`,
    `.data-stamp-XXXXXXXX`, and, of writers that are gone, `.NAME.tmp-TAG-PID.export-check` and
    `.data_paths.tmp-TAG-PID.json.stage`); nothing of another name, the tempfile-named ones only as folders. What
    was removed."""
    import re
    import shutil

    from geodino.io_temps import sweep_temps
    from geodino.train.resume_paths import STAMP

    removed = [p for n in names for p in sweep_temps(out_dir / f"{n}.export-check")] + sweep_temps(out_dir / STAMP)
    students = "|".join(re.escape(n) for n in names)
    ours = re.compile(rf"\.(?:{students})\.export-check-{_TEMPFILE}|\.data-stamp-{_TEMPFILE}")
    try:
        found = [e.path for e in os.scandir(out_dir) if ours.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for p in found:
        shutil.rmtree(p, ignore_errors=True)
        if not os.path.exists(p):
            removed.append(Path(p))
    if found:
        log.info("removed the staging folders an earlier geodino left: %s", ", ".join(Path(p).name for p in found))
    return removed


def probe_data(cfg: DistillConfig, patch: int, in_chans: int, batch: int) -> None:
    """Read the first batch in this process (no workers) before the run writes anything or warms heads up, as
    pretraining's probe does: data that cannot be read, a source whose sampled tiles are all nodata, or a band count
    the teacher does not take fails here in one line. The run's one band check: every later batch has this batch's
    band count (the sources must agree on one, each source's files too, and a photo of another count is refused
    where it is read). The global random state is left as it was."""
    import torch

    from geodino.data.config import resolve_photometric
    from geodino.data.loaders import build_ssl_loader, check_sources_have_pixels

    with torch.random.fork_rng(devices=[]):
        loader = build_ssl_loader(
            cfg.data,
            resolve_photometric(cfg.crops, False),
            batch_size=batch,
            num_workers=0,
            seed=cfg.train.seed,
            patch_size=patch,
            max_steps=1,
            progress=False,
        )
        check_sources_have_pixels(loader.sources, cfg.train.seed)  # type: ignore[attr-defined]  # build_ssl_loader sets it
        check_bands(cfg, in_chans, next(iter(loader)))


def check_bands(cfg: DistillConfig, in_chans: int, batch: dict[str, Any]) -> None:
    """The data's band count must be the teacher's input bands: one line naming both before the first step."""
    from geodino.errors import InputError, plural

    got = int(batch["global_crops"].shape[1])
    if got != in_chans:
        raise InputError(
            f"the data has {plural(got, 'band')} per image but the teacher {cfg.teacher.spec} takes {in_chans}; "
            f"select {in_chans} bands in data.* so they match, or adapt the teacher's input to the data (a "
            "teacher.spec with ?bands=..., docs/backbone.md)"
        )
