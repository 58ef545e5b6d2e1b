"""A distillation run's folder at the start: made and locked, the resume choice checked against it (`take_run_folder`,
`refuse_used_folder`; the step it resumes from is `geodino.train.resume_point`), the data read once unless the run
is finished (`probe_data`), config.yaml and schedules.png written once teacher, students and data are checked
(`write_start_files`), and what the start wrote undone when it is refused (`undo_start`): new files and folders
removed, replaced ones restored. The housekeeping of a used folder (half-written checkpoints removed, later
checkpoints moved aside, log rows past the resume step dropped) waits in `Start.later` until the start is accepted
(`Start.settle`), so a refused start leaves a used folder as it found it. `Start` and `undo_start` are pretraining's
too (`geodino.train.run_start`).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from geodino.train.distill.config import DistillConfig
from geodino.train.distill.export import check_resume_config, checkpoint_dir
from geodino.train.run_start import Start, undo_start

__all__ = [
    "Start",
    "check_bands",
    "probe_data",
    "refuse_other_layout",
    "refuse_used_folder",
    "take_run_folder",
    "undo_start",
    "write_start_files",
]

log = logging.getLogger("geodino.distill")


def take_run_folder(cfg: DistillConfig, start: Start, rank: int, plan: Any) -> tuple[Path, Any, list[str], Path]:
    """Make and lock the run folder, form the subgroups and check the resume choice against the folder (clearing
    half-written checkpoints waits in `start.later`): run folder, subgroup layout, this rank's student names,
    checkpoint folder."""
    from geodino.config import to_dict
    from geodino.io import make_dirs
    from geodino.run_lock import lock_run_folder
    from geodino.train.checkpointing import latest_checkpoint
    from geodino.train.subgroups import init_subgroups

    fresh = not Path(cfg.output_dir).expanduser().exists()
    out_dir = make_dirs(Path(cfg.output_dir).expanduser(), what="output_dir")
    layout = init_subgroups(plan, cfg.train.global_batch_size, len(cfg.students))

    names = [cfg.students[i].name for i in layout.students]
    ckpt_dir = checkpoint_dir(out_dir, names, layout.colocated)
    if rank == 0:
        lock_run_folder(out_dir)
        if fresh:  # listed once this run holds it: no other run writes into it
            start.made.append(out_dir)
    if (layout.subgroup_rank == 0) if not layout.colocated else rank == 0:
        start.later.append(lambda: _clear_partial_checkpoints(ckpt_dir))
    if cfg.train.resume == "auto":  # the same answer on every rank: each looks at every student's folder
        refuse_other_layout(out_dir, [s.name for s in cfg.students], layout.colocated)
    if cfg.train.resume == "auto" and (newest := latest_checkpoint(ckpt_dir)) is not None:
        check_resume_config(newest, to_dict(cfg), out_dir)  # before config.yaml and data_paths.json are rewritten
    if cfg.train.resume == "never":
        refuse_used_folder(out_dir, [s.name for s in cfg.students])
    return out_dir, layout, names, ckpt_dir


def _clear_partial_checkpoints(ckpt_dir: Path) -> None:
    """Remove the checkpoints a killed run was writing (never complete)."""
    for tmp in ckpt_dir.glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)


def refuse_other_layout(out_dir: Path, names: list[str], colocated: bool) -> None:
    """`train.resume=auto` where only the other placement of the students wrote checkpoints: refused in one line.
    Co-located students (one process, or no `students.ranks`/`share`) keep one `checkpoints/` of them all; students
    on their own ranks keep `<student>/checkpoints/` each, with an optimizer of that student alone. Such a launch
    looked only in its own layout's folders, found none and started again from step 0 beside the earlier run's
    checkpoints, without a word."""
    from geodino.errors import CheckpointError
    from geodino.train.checkpointing import latest_checkpoint

    def newest(together: bool) -> Path | None:
        found = [latest_checkpoint(checkpoint_dir(out_dir, [n], together)) for n in names]
        return next((f for f in found if f is not None), None)

    if newest(colocated) is not None or (theirs := newest(not colocated)) is None:
        return
    wrote = "on their own ranks (students.ranks or share, several processes)" if colocated else "co-located"
    now = "co-locates them (one process, or no students.ranks/share)" if colocated else "puts each on its own ranks"
    raise CheckpointError(
        f"output_dir {out_dir} holds checkpoints of students trained {wrote} ({theirs.relative_to(out_dir)}) but "
        f"this launch {now}, which keeps its checkpoints elsewhere and would start again from step 0; resume with "
        "the placement that wrote them (any process count that gives it), or start a new output_dir (students[i]."
        "init_from a checkpoint ?which=NAME to continue from its weights)"
    )


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
    them again. First removes the export-check staging folders killed re-runs left (`finish.export_check_target`)."""
    from geodino.config import save_config
    from geodino.io_temps import sweep_temps
    from geodino.train.distill.finish import export_check_target, write_if_changed
    from geodino.train.pretrain_start import previous_config
    from geodino.train.resume_paths import STAMP

    for student in cfg.students:  # a dead writer's only: a live re-run's check of the same folder stays
        sweep_temps(export_check_target(out_dir, student.name))
    if finished and (out_dir / "config.yaml").is_file():
        return
    before = previous_config(out_dir) if resuming else None  # read before config.yaml is rewritten
    start.keep(out_dir / "config.yaml", out_dir / "schedules.png", out_dir / STAMP)
    # each put in place only when its bytes change: a re-run of the same command leaves them as they were
    write_if_changed(out_dir / "config.yaml", partial(save_config, cfg))
    write_if_changed(out_dir / STAMP, partial(_data_stamp, cfg, before))
    write_if_changed(out_dir / "schedules.png", sched.plot)
    log.info("schedules: %s", out_dir / "schedules.png")


def _data_stamp(cfg: DistillConfig, before: dict[str, Any] | None, path: Path) -> None:
    """`write_data_stamp`'s file written to `path` (an `atomic_path` temporary of the run folder's stamp) through a
    staging folder named after it (`path`.stage: the stamp's own sweep removes a killed start's). The stamp there
    now is copied in first, so that `write_data_stamp(unchanged_from=before)` keeps it unlisted when the paths are
    spelled as `before` spells them."""
    import shutil

    from geodino.train.resume_paths import STAMP, write_data_stamp

    stage = Path(f"{path}.stage")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        if before is not None and (path.parent / STAMP).is_file():
            shutil.copyfile(path.parent / STAMP, stage / STAMP)
        write_data_stamp(cfg, stage, unchanged_from=before)
        shutil.copyfile(stage / STAMP, path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


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
        check_sources_have_pixels(loader.sources, cfg.train.seed)
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
