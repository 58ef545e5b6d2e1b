"""Atomic writes: outputs appear under their final name only when complete.

A killed process leaves at most a `*.tmp-<pid>` file or folder next to the target, never a half-written
output under the final name. Checkpoints, rasters, tables and stores all go through `atomic_path`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from geodino.errors import InputError


def temp_name(path: str | Path) -> Path:
    """The temporary sibling used while `path` is being written (same folder, so rename is atomic)."""
    path = Path(path)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.tmp-{os.getpid()}{suffix}")


def check_writable(path: str | Path, *, overwrite: bool = False) -> Path:
    """Fail early, naming the path, when an output exists (and overwrite is off) or its folder is not writable."""
    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists; pass --overwrite to replace it (or choose another path)")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {parent}: {exc.strerror}; choose a writable location") from exc
    if not os.access(parent, os.W_OK):
        raise InputError(f"output folder {parent} is not writable; choose a writable location")
    return path


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write to; on success rename it to `path`, on error remove it.

    Works for files and folders (Zarr stores). The rename is atomic for files; an existing folder is moved
    aside first and deleted after the new one is in place.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():
        raise RuntimeError(f"nothing was written to {tmp} for {path}")
    if tmp.is_dir() and path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)
