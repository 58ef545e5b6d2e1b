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
    that existed is never removed. A file that cannot be put back is one warning line naming it and the copy of its
    earlier bytes kept in the temporary folder; what cannot be removed stays without a word (nothing is lost)."""
    from geodino.errors import GeoDinoError
    from geodino.io import atomic_path
    from geodino.run_lock import release_run_folder

    start.later.clear()
    for path, data in start.replaced.items():
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        except (OSError, GeoDinoError) as exc:  # the start's own error stays the one raised; this one is said
            _say_not_restored(path, data, exc)
    if not start.made:
        return
    release_run_folder(out)  # its lock file goes with it
    for path in reversed(start.made):  # the files first, then the folder
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()


def _say_not_restored(path: Path, data: bytes, exc: BaseException) -> None:
    """Warn, in one line, that `path` did not get its earlier bytes `data` back and where they are: a copy in the
    system's temporary folder, else a copy beside `path` under its temporary name (which a next run there sweeps
    away: `atomic_path` removes its own temporary when the rename fails, so nothing else holds them)."""
    import tempfile
    import warnings

    from geodino.io import temp_name

    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    beside = temp_name(path)
    try:
        fd, copy = tempfile.mkstemp(prefix=f"geodino-earlier-{path.stem}-", suffix=path.suffix)
        with open(fd, "wb") as f:
            f.write(data)
    except OSError as err:
        said = f"its earlier content could not be copied ({err.strerror or err})"
        try:
            beside.write_bytes(data)
        except OSError:
            with contextlib.suppress(OSError):
                beside.unlink(missing_ok=True)
        else:
            said = f"its earlier content is in {beside}; copy it back by hand before a next run there removes it"
    else:
        said = f"its earlier content is in {copy}; copy it back by hand"
    warnings.warn(f"{path} was not put back as it was before this start ({why}); {said}", stacklevel=3)
