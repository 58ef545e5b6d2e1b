"""The end of a distillation run: each student's export, the trackers' end and `curves.png` (`finish_run`).

A re-run of a finished run (its newest checkpoint is at `train.max_steps`: nothing trains) leaves the run folder
as it was, decided as pretraining decides it (`geodino.train.finished_run`, from file times and the STAC item,
nothing exported again to compare): an export whose files are all in place, written after the final checkpoint,
and whose item names its step and the properties this run would record (`train.export`'s network, teacher, data
paths, extent) is kept; curves.png is kept when it is no older than log.csv. An export that was deleted, or one that
a changed `train.export` or moved data folder makes different, is written again, and a deleted curves.png drawn.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from geodino.train.distill.export import export_properties, export_student

__all__ = ["finish_run"]

log = logging.getLogger("geodino.distill")


def finish_run(run: Any, extent: Any, trackers: list[Any]) -> dict[str, Path]:
    """The writer's end of a run that trained to `train.max_steps` (or found it done): export each of its students
    (`train.export`, the data's normalisation and the STAC properties), end the trackers, draw curves.png from
    log.csv; `{student name: exported .pth}`. A finished run's re-run keeps what is current (module docstring)."""
    from geodino.data.normalization import data_normalization
    from geodino.models.checkpoints.stac_item import distill_properties
    from geodino.train.curves import plot_distill_log
    from geodino.train.finished_run import export_is_current, is_newer

    cfg = run.cfg
    rerun = run.start >= cfg.train.max_steps
    final = run.ckpt_dir / f"step_{cfg.train.max_steps:08d}.ckpt"  # what a finished run resumes
    other = run.resumed_from or {}  # or, relaunched with the other placement, the checkpoint it resumed
    norm = run.norm or data_normalization(cfg.data, "distillation")[0]  # the students' input standardisation
    props = distill_properties(cfg.teacher.spec, cfg.data, extent)  # for each export's STAC item
    exports: dict[str, Path] = {}
    for name in run.arch.students:
        pth = run.out_dir / name / f"{name}.pth"
        expect = export_properties(name, cfg.train.export, props, cfg.train.max_steps)
        if rerun and export_is_current(other.get(name, final), pth, expect):  # as it was: not exported again
            log.info("export of %s kept: %s", name, pth)
            exports[name] = pth
            continue
        exports[name] = export_student(run.arch, name, run.out_dir, cfg.train.export, norm, props, cfg.train.max_steps)
    for tracker in trackers:
        tracker.finalize("success")
    k = getattr(run.arch.teacher["dino_head"], "out_dim", None)  # the teacher head's: the students' K
    curves = run.log_file.parent / "curves.png"
    if (rerun and is_newer(curves, run.log_file)) or plot_distill_log(run.log_file, curves, n_prototypes=k):
        log.info("training curves: %s", curves)  # none drawn when log.csv has no rows
    return exports
