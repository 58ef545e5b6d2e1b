"""One training run per output folder: `lock_run_folder` holds an exclusive `flock` on `out/.geodino.lock`
(`geodino.io.RUN_LOCK`) for the life of the process, so that a second run into the same `output_dir` (pretrain or
distill) stops with one line instead of resuming from the first one's checkpoints while it still writes them.
The OS frees the lock on any exit, killed or not, so a killed run never leaves a stale lock behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from geodino.errors import InputError

__all__ = ["lock_run_folder"]

_LOCKS: dict[str, Any] = {}  # run folder -> its open lock file, held for the life of this process


def lock_run_folder(out: Path) -> None:
    """Lock `out` for this process (a no-op when it already holds it, e.g. a second stage in one process); raise
    InputError naming the holder when another process has it."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        return
    key = str(out.resolve())
    if key in _LOCKS:
        return
    from geodino.io import RUN_LOCK

    fh = open(out / RUN_LOCK, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        fh.seek(0)
        owner = fh.read().strip() or "another process"
        fh.close()
        raise InputError(
            f"output_dir {out} is in use by another run ({owner}); wait for it to finish (a killed run frees it) or "
            "choose another output_dir"
        ) from exc
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}")
    fh.flush()
    _LOCKS[key] = fh
