"""The start of a training run (pretrain or distill) in its run folder, undone when the start is refused.

A start records in a `Start` what it creates (`made`: a new run folder, then its new files), the earlier bytes of
the files it rewrites (`replaced`: config.yaml, schedules.png) and the housekeeping a used folder needs (`later`:
a killed run's half-written checkpoints removed, old `hpc_ckpt_*` files and checkpoints of an abandoned branch moved
aside, log rows past the resume step dropped). The housekeeping runs only once every check passed (`Start.settle`);
a start refused with a geodino error calls `undo_start`, so a used folder is left byte for byte as it was found and a
new one is removed (the missing folders above it go with `geodino.io.removes_created_dirs` on the public function).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Start", "undo_start"]


@dataclass
class Start:
    """What a start changed or means to change: `made` (new paths, listed on rank 0: the run folder, then its new
    files), `replaced` (the earlier bytes of files it rewrote) and `later` (changes to a used folder, run by `settle`
    once every check passed)."""

    made: list[Path] = field(default_factory=list)
    replaced: dict[Path, bytes] = field(default_factory=dict)
    later: list[Callable[[], Any]] = field(default_factory=list)

    def keep(self, *paths: Path) -> None:
        """About to write `paths`: keep an existing file's bytes (put back by `undo_start`), list a new one as made."""
        for p in paths:
            if p.is_file():
                self.replaced.setdefault(p, p.read_bytes())
            elif not p.exists():
                self.made.append(p)

    def settle(self) -> None:
        """The start is accepted: run the deferred housekeeping (in the order it was asked for)."""
        for step in self.later:
            step()
        self.later.clear()


def undo_start(out: Path, start: Start) -> None:
    """A start refused with a geodino error leaves the run folder `out` as it found it: the deferred housekeeping is
    dropped, the files the start replaced get their earlier bytes back and what it created is removed, the run folder
    only when nothing else is in it (distill's warmed-up `teacher.heads.pth` stays for the next attempt). A folder
    that existed is never removed."""
    from geodino.io import atomic_path
    from geodino.run_lock import release_run_folder

    start.later.clear()
    for path, data in start.replaced.items():
        with contextlib.suppress(OSError), atomic_path(path) as tmp:
            tmp.write_bytes(data)
    if not start.made:
        return
    release_run_folder(out)  # its lock file goes with it
    for path in reversed(start.made):  # the files first, then the folder
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
