"""A run's checkpoint folder: which step checkpoints it holds, `last.ckpt`, `keep_last`, and moving checkpoints aside.

Housekeeping of `step_XXXXXXXX.ckpt` files by name only (no checkpoint is opened, so no torch): pretraining's
`CheckpointCallback`, distillation's saver and the resume logic of both share these rules. Checkpoints of an
abandoned branch (`abandoned-<timestamp>/`) or files a run must not resume from (`ignored-<timestamp>/`) are
renamed into a subfolder, never deleted. Split out of `checkpointing.py`, which reads and writes their contents.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from geodino.errors import TrainingError
from geodino.io import StorageError

# the whole name, ASCII digits: `$` also matched before a trailing newline and `\d` any Unicode digit, so names
# geodino never writes (`step_1.ckpt\n`, Arabic-Indic digits) counted as step checkpoints: pruned, moved aside
CKPT_PATTERN = re.compile(r"^step_([0-9]+)\.ckpt\Z")


def find_checkpoints(folder: str | Path) -> list[Path]:
    """`step_*.ckpt` files in a run's checkpoint folder, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CKPT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint of a run (temporary files are never matched)."""
    found = find_checkpoints(folder)
    return found[-1] if found else None


def checkpoint_step(path: str | Path) -> int | None:
    """The step in a `step_XXXXXXXX.ckpt` name (None for any other name)."""
    m = CKPT_PATTERN.match(Path(path).name)
    return int(m.group(1)) if m else None


def prune_checkpoints(folder: Path, step: int, keep_last: int, remove: Callable[[Path], None]) -> list[Path]:
    """Apply `keep_last` after the checkpoint of `step` was written: keep the newest `keep_last` step checkpoints of
    the running branch (steps up to `step`, the one just written always among them) and `remove` the older ones;
    0 keeps all. A checkpoint past `step` is never counted nor removed: it is no older than the one just written
    (a resume from an earlier step moves them aside first, `abandon_later_checkpoints`). Returns what was removed."""
    if keep_last <= 0:
        return []
    branch = [p for p in find_checkpoints(folder) if (checkpoint_step(p) or 0) <= step]
    old = branch[:-keep_last]
    for p in old:
        remove(p)
    return old


def point_last(link: Path, target_name: str) -> None:
    """Atomically make `last.ckpt` a relative symlink to the step checkpoint `target_name` of its folder. The link is
    made under `temp_name` (not `atomic_path`, which would set the mode of the file a link points to), so a killed
    run's temporary link is swept (`sweep_temps`) here and by the run folder's `.*.tmp-*` clean-up on resume."""
    from geodino.io import sweep_temps, temp_name

    sweep_temps(link)
    tmp = temp_name(link)
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:  # the temporary link goes too; the rename's error is the one raised
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    from geodino.io import fsync_path

    fsync_path(link.parent)  # the new link (and the rename of the checkpoint it names) on the disk


def replace_durably(tmp: Path, final: Path) -> None:
    """Rename the finished checkpoint `tmp` to `final` so that a power loss cannot leave an empty `final`: the file
    is synced to the disk before the rename (its data first, then the name) and the folder after it."""
    from geodino.io import fsync_path

    if tmp.is_file():  # a sharded checkpoint is a folder: its files are not synced one by one (see atomic_path)
        fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def move_aside(paths: list[Path], folder: Path, prefix: str) -> Path:
    """Move `paths` (files or sharded checkpoint folders) into a new `folder/<prefix>-<YYYYmmdd-HHMMSS>[-n]/`,
    renamed, nothing deleted; returns that folder. Renames within one file system are atomic."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = folder / f"{prefix}-{stamp}", 1
    while aside.exists():
        n += 1
        aside = folder / f"{prefix}-{stamp}-{n}"
    aside.mkdir(parents=True)
    for p in paths:
        os.replace(p, aside / p.name)
    return aside


def abandon_later_checkpoints(folder: Path, step: int, resume: Path | None = None) -> tuple[list[Path], Path | None]:
    """A run resumed from step `step` (from `resume`, which stays) in a folder that holds checkpoints of later steps:
    those belong to the branch the resume abandons. Left in place, `keep_last` counted the new lower-step
    checkpoints as the oldest and deleted each as it was written (with keep_last=1 `last.ckpt` pointed at nothing),
    and the next `resume=auto` jumped back to the abandoned branch. They are moved (renamed, nothing is deleted) into
    `folder/abandoned-<YYYYmmdd-HHMMSS>/`, so the folder's history is linear again, and `last.ckpt` points at the
    newest checkpoint left (removed when none is). A checkpoint of the same step that is not `resume` itself (a
    resume from another folder) is another branch too. Returns (the moved files' old paths, the new folder)."""

    def same(p: Path) -> bool:
        try:
            return resume is not None and p.resolve() == resume.resolve()
        except OSError:
            return False

    later = [p for p in find_checkpoints(folder) if (checkpoint_step(p) or 0) >= step and not same(p)]
    if not later:
        return [], None
    aside = move_aside(later, folder, "abandoned")
    link, newest = folder / "last.ckpt", latest_checkpoint(folder)
    if newest is not None:
        point_last(link, newest.name)
    elif link.is_symlink():
        link.unlink()
    return later, aside


def abandon_and_say(folder: Path, step: int, resume: Path | None, why: str) -> list[Path]:
    """`abandon_later_checkpoints`, and one line on stderr naming what moved where (`why`: what makes the run resume
    from `step`, e.g. "resuming from step 2" or "every student resumes from step 2"). Returns the moved paths."""
    import sys

    from geodino.errors import plural

    moved, aside = abandon_later_checkpoints(folder, step, resume)
    if moved:
        names = ", ".join(p.name for p in moved)
        print(
            f"geodino: {why}, which abandons the {plural(len(moved), 'checkpoint')} of later steps in {folder} "
            f"({names}): moved to {aside}/ so that the run's history is linear; delete that folder when you no "
            "longer need them",
            file=sys.stderr,
        )
    return moved


class CheckpointWriteError(TrainingError, StorageError):
    """A checkpoint the storage refused (full disk, read-only): a `TrainingError` whose exit code is the storage
    errors' 1 (`geodino.io.StorageError`, docs/errors.md), as any other command's full disk, not a bad input's 2."""


def write_error(final: Path, exc: OSError, step: int) -> TrainingError:
    """The one line a run stops with when its checkpoint `final` cannot be written (ENOSPC, EROFS, EACCES, ...): what
    failed, why, the newest complete checkpoint (untouched), and how to go on."""
    last = latest_checkpoint(final.parent)
    kept = f"the newest complete checkpoint is {last}" if last else "no complete checkpoint was written yet"
    return CheckpointWriteError(
        f"cannot write checkpoint {final} ({exc.strerror or exc}); training stopped after step {step} and {kept}; "
        f"free space in {final.parent} (or make it writable) and run the same command again to resume"
    )
