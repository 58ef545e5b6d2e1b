"""A distillation run's folder at the start: made and locked, half-written checkpoints cleared, the resume choice
checked against it (`take_run_folder`, `refuse_used_folder`), config.yaml and schedules.png written once teacher and
students are checked (`write_start_files`), and what the start made removed again when it is refused (`undo_start`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from geodino.train.distill.config import DistillConfig
from geodino.train.distill.export import check_resume_config, checkpoint_dir

log = logging.getLogger("geodino.distill")


def take_run_folder(cfg: DistillConfig, made: list[Path], rank: int, plan: Any) -> tuple[Path, Any, list[str], Path]:
    """Make and lock the run folder, form the subgroups, clear half-written checkpoints and check the resume
    choice against the folder: run folder, subgroup layout, this rank's student names, checkpoint folder."""
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
            made.append(out_dir)
    if (layout.subgroup_rank == 0) if not layout.colocated else rank == 0:
        for tmp in ckpt_dir.glob(".*.tmp-*"):  # a checkpoint a killed run was writing: never complete
            tmp.unlink(missing_ok=True)
    if cfg.train.resume == "auto" and (newest := latest_checkpoint(ckpt_dir)) is not None:
        check_resume_config(newest, to_dict(cfg))  # before config.yaml is rewritten
    if cfg.train.resume == "never":
        refuse_used_folder(out_dir, [s.name for s in cfg.students])
    return out_dir, layout, names, ckpt_dir


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


def write_start_files(cfg: DistillConfig, out_dir: Path, sched: Any, made: list[Path]) -> None:
    """Rank 0, once teacher and students are checked: config.yaml and schedules.png (listed in `made` when new)."""
    from geodino.config import save_config

    made += [p for p in (out_dir / "config.yaml", out_dir / "schedules.png") if not p.exists()]
    save_config(cfg, out_dir / "config.yaml")
    log.info("schedules: %s", sched.plot(out_dir / "schedules.png"))


def undo_start(out: Path, made: list[Path]) -> None:
    """A start refused with a geodino error (teacher, heads, students or data) leaves the run folder as it found
    it: what `_setup` created is removed, the run folder only when nothing else is in it (a new folder whose heads
    warm-up finished keeps its `teacher.heads.pth` for the next attempt). A folder that existed is never removed."""
    from geodino.run_lock import release_run_folder

    if not made:
        return
    release_run_folder(out)  # its lock file goes with it
    for path in reversed(made):  # the files first, then the folder
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
