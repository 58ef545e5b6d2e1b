"""The end of a distillation run: each student's export, the trackers' end and `curves.png` (`finish_run`).

A re-run of a finished run (its newest checkpoint is at `train.max_steps`: nothing trains) leaves the run folder
as it was: each student is exported to a staging folder first and its files replace the earlier export only when
they differ (`export_unless_same`; the STAC item is compared without the time it was written), and curves.png is
replaced only when its bytes differ (`write_if_changed`). An export that was deleted, or one that a changed
`train.export` or data path makes different, is written again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from geodino.train.distill.export import export_student

__all__ = ["export_unless_same", "finish_run", "same_export", "write_if_changed"]

log = logging.getLogger("geodino.distill")

_WHEN = ("datetime", "created")  # the STAC item's record of when it was written: not what it describes


class _Unchanged(Exception):
    """Raised inside `atomic_path` to drop a temporary whose bytes are those already in place."""


def write_if_changed(path: Path, write: Callable[[Path], Any]) -> bool:
    """Write `path` through `write(temporary)` and put it in place only when its bytes differ from the file there
    (atomically, as `atomic_path`); whether it was replaced. A file with the same bytes keeps its timestamps."""
    import filecmp

    from geodino.io import atomic_path

    try:
        with atomic_path(path) as tmp:
            write(tmp)
            if path.is_file() and tmp.is_file() and filecmp.cmp(tmp, path, shallow=False):
                raise _Unchanged
    except _Unchanged:
        return False
    return True


def _item(path: Path) -> Any:
    """A STAC item without the time it was written (None when it cannot be read)."""
    try:
        item = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(item, dict) and isinstance(item.get("properties"), dict):
        for key in _WHEN:
            item["properties"].pop(key, None)
    return item


def same_export(a: Path, b: Path, name: str) -> bool:
    """Whether the export `name` in folders `a` and `b` is the same: its weight files byte for byte, its STAC item
    but for when it was written."""
    import filecmp

    for suffix in (".pth", ".safetensors", ".heads.pth"):
        x, y = a / f"{name}{suffix}", b / f"{name}{suffix}"
        if not (x.is_file() and y.is_file() and filecmp.cmp(x, y, shallow=False)):
            return False
    item = _item(a / f"{name}.stac.json")
    return item is not None and item == _item(b / f"{name}.stac.json")


EXPORT_CHECK = ".export-check"  # `export_check_target`


def export_check_target(out_dir: Path, name: str) -> Path:
    """What a finished re-run stages student `name`'s export in before comparing it (`export_unless_same`): only
    ever made under its `temp_name` (`.NAME.tmp-TAG-PID.export-check`) and removed, so that `sweep_temps` of this
    path (every start of the run, and each check) removes what a killed re-run left; never made itself."""
    return out_dir / f"{name}{EXPORT_CHECK}"


def export_unless_same(arch: nn.Module, name: str, out_dir: Path, *args: Any, **kwargs: Any) -> tuple[Path, bool]:
    """`export_student`, leaving an earlier export that is the same (`same_export`) untouched: the `.pth` path and
    whether it was written. The staging folder sits in `out_dir` (the same file system: no second copy of the
    weights in a RAM-backed /tmp) and is removed (a killed check's by the next start: `export_check_target`)."""
    import shutil

    from geodino.io_temps import sweep_temps, temp_name

    folder = out_dir / name
    if (folder / f"{name}.pth").is_file():
        target = export_check_target(out_dir, name)
        sweep_temps(target)
        stage = temp_name(target)
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        try:
            export_student(arch, name, stage, *args, **kwargs)
            if same_export(stage / name, folder, name):
                return folder / f"{name}.pth", False
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return export_student(arch, name, out_dir, *args, **kwargs), True


def finish_run(run: Any, extent: Any, trackers: list[Any]) -> dict[str, Path]:
    """The writer's end of a run that trained to `train.max_steps` (or found it done): export each of its students
    (`train.export`, the data's normalisation and the STAC properties), end the trackers, draw curves.png from
    log.csv; `{student name: exported .pth}`. A finished run's re-run rewrites nothing that would stay the same."""
    from geodino.data.normalization import data_normalization
    from geodino.models.checkpoints.stac_item import distill_properties
    from geodino.train.curves import plot_distill_log

    cfg = run.cfg
    rerun = run.start >= cfg.train.max_steps
    norm = data_normalization(cfg.data, "distillation")[0]  # what the students' input was standardised with
    props = distill_properties(cfg.teacher.spec, cfg.data, extent)  # for each export's STAC item
    exports: dict[str, Path] = {}
    for name in run.arch.students:
        args = (run.arch, name, run.out_dir, cfg.train.export, norm, props)
        if rerun:
            exports[name], written = export_unless_same(*args, step=cfg.train.max_steps)
            log.info("export of %s %s", name, "written" if written else "unchanged: kept as it was")
        else:
            exports[name] = export_student(*args, step=cfg.train.max_steps)
    for tracker in trackers:
        tracker.finalize("success")
    k = getattr(run.arch.teacher["dino_head"], "out_dim", None)  # the teacher head's: the students' K
    curves = run.log_file.parent / "curves.png"

    def draw(tmp: Path) -> None:
        if plot_distill_log(run.log_file, tmp, n_prototypes=k) is None:  # no rows: nothing to draw, none kept
            raise _Unchanged

    if write_if_changed(curves, draw) or curves.is_file():
        log.info("training curves: %s", curves)
    return exports
