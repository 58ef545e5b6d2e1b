"""Atomic writes: outputs appear under their final name only when complete.

A killed process leaves at most a `.STEM.tmp-TAG-PID.SUFFIX` file or folder next to the target (`temp_name`), never
a half-written output under the final name. Checkpoints, rasters, tables and stores all go through `atomic_path`.

Such leftovers are removed when the next write of the same target starts (`sweep_temps`, one stderr line saying
what and how big). TAG names the writer's host and pid space (`writer_tag`), because a pid means something only
where it was issued: on a shared filesystem another node (or container) may run a live writer whose pid is unused
here. So a temporary is a killed run's when its TAG is ours and its pid is no live process here (removed right
away: a 3 GB temporary should not sit beside its rerun); one of another TAG, or an older geodino's name without a
TAG whose pid is not alive here, only when nothing in it has changed for `STALE_AFTER_S` (a day: a live writer
keeps writing into its temporary until the rename, so its temporary is kept).

The temporaries' names and their sweep live in `geodino.io_temps`, JSON text and content stamps in
`geodino.io_stamps`; every name is re-exported here, where callers import them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from geodino.errors import GeoDinoError, InputError
from geodino.io_stamps import RACY_NS, content_stamp, files_stamp, json_text, vrt_sources
from geodino.io_temps import (
    NAME_MAX,
    OLD_TAIL,
    STALE_AFTER_S,
    _named,
    _remove,
    aside_name,
    sweep_temps,
    temp_name,
    writer_tag,
)
from geodino.run_lock import RUN_LOCK, release_run_folder

__all__ = [
    "RACY_NS",
    "STALE_AFTER_S",
    "StorageError",
    "atomic_path",
    "check_replaceable_folder",
    "check_suffix",
    "check_writable",
    "content_stamp",
    "files_stamp",
    "forget_created_dirs",
    "fsync_path",
    "json_text",
    "make_dirs",
    "refuse_folder_in_the_way",
    "remove_created_dirs",
    "removes_created_dirs",
    "set_default_mode",
    "sweep_temps",
    "temp_name",
    "vrt_sources",
    "writer_tag",
]

T = TypeVar("T")


# Folders created by `make_dirs` in this process, parents first: a command that fails with a user error removes
# those still empty (`remove_created_dirs`, called by the CLI), so a failed run leaves no empty output folder.
_CREATED_DIRS: list[Path] = []


def make_dirs(folder: str | Path, *, what: str = "output folder") -> Path:
    """`mkdir -p` for outputs: fail with one line naming the folder (a file in the way, no permission, read-only
    disk) and record the folders it creates so that a failed command can remove them again."""
    folder = Path(folder).expanduser()
    if not str(folder):
        return Path(".")
    missing: list[Path] = []
    p = folder
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    if p.exists() and not p.is_dir():
        raise InputError(f"cannot create {what} {folder}: {p} is a file, not a folder; choose another location")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise InputError(f"cannot create {what} {folder}: it exists as a file; choose another location") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot create {what} {folder}: {reason}; choose a writable location") from exc
    _CREATED_DIRS.extend(reversed(missing))
    if not os.access(folder, os.W_OK):
        raise InputError(f"{what} {folder} is not writable; choose a writable location (or fix its permissions)")
    _check_can_create_in(folder, what)
    return folder


_CAN_CREATE_IN: set[str] = set()  # folders a file was created in (once per folder and process: atomic_path asks often)


def _check_can_create_in(folder: Path, what: str) -> None:
    """Refuse, in one line, a folder no file can be created in. `os.access` says yes to root on a pseudo filesystem
    (/proc: "No such file or directory" at the write, a traceback after all the work) or a read-only mount it cannot
    see as such; so a file of a temporary's name (swept if a kill leaves it) is made and removed. A full disk or
    quota is a StorageError (exit code 1, as at a later write); anything else an InputError (exit code 2)."""
    key = str(folder.resolve())
    if key in _CAN_CREATE_IN:
        return
    probe = temp_name(folder / ".geodino-write-check")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # another thread's check of the same folder: a file could be created
        pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(
                f"the storage refused a write in {what} {folder} ({reason}); free space or choose another location, "
                "then run the same command again"
            ) from exc
        if exc.errno == errno.ENOENT:  # in an existing folder: a pseudo filesystem, not a missing path
            reason = "a special filesystem such as /proc"
        raise InputError(f"cannot create files in {what} {folder} ({reason}); choose a writable location") from exc
    else:
        with contextlib.suppress(OSError):
            probe.unlink()
    _CAN_CREATE_IN.add(key)


def forget_created_dirs() -> None:
    """Start a new command: folders created before are no longer this command's to remove."""
    _CREATED_DIRS.clear()


def remove_created_dirs(start: int = 0) -> None:
    """Remove the folders `make_dirs` created (since the `start`-th) that are still empty (deepest first; this
    process's own run lock does not count as content: it is released and its file removed); keep any with content."""
    for p in reversed(_CREATED_DIRS[start:]):
        with contextlib.suppress(OSError):
            if (p / RUN_LOCK).exists():
                release_run_folder(p)  # only a lock this process holds: another run's file stays, and so does p
            p.rmdir()
    del _CREATED_DIRS[start:]


def removes_created_dirs(func: Callable[..., T]) -> Callable[..., T]:
    """Decorate a public function that writes outputs: when it fails with a user error (a GeoDinoError), the folders
    `make_dirs` created during the call and that are still empty are removed, as the CLI does for a whole command,
    so a refused call from Python leaves no empty output folder either."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        start = len(_CREATED_DIRS)
        try:
            return func(*args, **kwargs)
        except GeoDinoError:
            remove_created_dirs(start)
            raise

    return wrapper


def check_writable(path: str | Path, *, overwrite: bool = False) -> Path:
    """Fail early, naming the path, when an output exists (and overwrite is off) or its folder is not writable.
    `overwrite` is read as the CLI and YAML read a flag ("false" is False: `bool("false")` would replace the file)."""
    from geodino.config import true_or_false

    path = _named(Path(path).expanduser())
    refuse_long_name(path)
    if path.exists() and not true_or_false(overwrite, "overwrite"):
        raise InputError(
            f"output {path} already exists; pass --overwrite (overwrite=True in Python) to replace it, or choose "
            "another path"
        )
    refuse_folder_in_the_way(path)
    make_dirs(path.parent if str(path.parent) else Path("."))
    return path


def refuse_long_name(path: Path, what: str = "output") -> None:
    """A part of `path` longer than a file name may be (NAME_MAX bytes): one line naming it, before any work (the
    OS's `File name too long` came as a traceback from the first stat of the path)."""
    for part in path.parts:
        if (n := len(part.encode("utf-8", "surrogateescape"))) > NAME_MAX:
            raise InputError(
                f"{what} {path}: the name {part[:24]}...{part[-12:]} is {n} bytes, more than the {NAME_MAX} a file "
                "or folder name may have; choose a shorter name"
            )


def refuse_folder_in_the_way(path: Path) -> None:
    """A file output (one with a suffix other than .zarr) whose name an existing folder holds: --overwrite replaces
    outputs, never a folder of other content, so stop before any work with one line; a name too long first
    (`refuse_long_name`)."""
    refuse_long_name(path)
    if path.is_dir() and not path.is_symlink() and path.suffix and path.suffix.lower() != ".zarr":
        raise InputError(
            f"output {path} is an existing folder, and a {path.suffix} output is a file; remove or rename the "
            "folder, or choose another output path"
        )


def check_replaceable_folder(
    path: Path, names: Collection[str], what: str, is_kind: Callable[[Path], bool] | None = None
) -> None:
    """Refuse, in one line, to replace `path` with an output folder unless it is absent, an empty folder, or an
    earlier output of the same kind: only files among `names` (and `is_kind(path)` true). --overwrite replaces
    outputs, never a folder of other content (a project folder, `.`) nor a file."""
    path = _named(Path(path).expanduser())
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise InputError(
            f"output {path} is a file, and {what} is a folder; remove or rename the file, or choose another output path"
        )
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise InputError(f"output folder {path} cannot be read ({exc.strerror}); choose another output path") from exc
    if not entries:
        return
    rule = f"--overwrite replaces only an empty folder or an earlier {what} ({', '.join(sorted(names))})"
    other = sorted(p.name + ("/" if p.is_dir() else "") for p in entries if p.name not in names or not p.is_file())
    if other:
        shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
        raise InputError(
            f"output folder {path} holds other content ({shown}) and {rule}; choose a new folder name, or move that "
            "content away first"
        )
    if is_kind is not None and not is_kind(path):
        raise InputError(
            f"output folder {path} holds files of another kind ({', '.join(sorted(p.name for p in entries))}, not an "
            f"earlier {what}) and {rule}; choose a new folder name, or move those files away first"
        )


def _discard(p: Path) -> None:
    """`_remove` on the way out of an error: one that removing raises would hide the error being raised."""
    with contextlib.suppress(OSError):
        _remove(p)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def set_default_mode(path: Path) -> None:
    """Give a finished file the mode a plain `open(path, "w")` would (0o666 minus the umask): some writers
    (safetensors, tempfile) create 0o600 files, which other users of a shared model folder cannot read."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~_umask())


class StorageError(GeoDinoError):
    """The storage refused a write (full disk, quota, read-only): not the input's fault, so exit code 1."""

    exit_code = 1


def fsync_path(path: Path) -> None:
    """Flush file `path`, or folder `path`'s entries (a rename), to the disk: a power loss after a rename leaves no
    empty file under the final name. A folder's error is ignored (not all file systems sync one), a file's raised."""
    folder = path.is_dir()
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not folder:
            raise


@contextlib.contextmanager
def atomic_path(
    path: str | Path,
    *,
    overwrite: bool = True,
    replaces: Callable[[Path], None] | None = None,
    durable: bool = True,
    sweep: bool = True,
) -> Iterator[Path]:
    """Yield a temporary path to write to; on success rename it to `path`. When the body raises, or the rename is
    refused or fails, the temporary is removed and that error raised unchanged (a GDAL error of a full disk as the
    OSError it stands for, `io_gdal.gdal_refusal`; a refused write whose error names no file as one naming `path`,
    `storage_errors.named_refusal`).

    Works for files and folders (Zarr stores). The rename is atomic for files; an existing folder is moved
    aside first and deleted after the new one is in place. `replaces(path)` (e.g. `check_replaceable_folder`)
    raises unless an existing `path` may be replaced; it runs before the write and again before the swap. A
    folder output that is the working directory (`.`) has its files replaced in place instead, so that the shell
    in it does not end up in a deleted folder.

    `durable`: a file is synced before its rename and its folder after (`fsync_path`); files inside a folder output
    (Zarr chunks) are not, one by one: too costly; often rewritten records (embed progress) pass durable=False.
    `sweep`: remove killed runs' temporaries beside `path` first; a writer of thousands of files into one folder
    (the probes' disk feature cache) sweeps that folder once itself and passes False (a sweep per file is quadratic).
    """
    path = _named(Path(path))
    refuse_long_name(path)
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists; pass --overwrite (overwrite=True in Python) to replace it")
    if not path.name:
        raise InputError(f"output {path} names no file or folder; choose an output path inside a folder")
    refuse_folder_in_the_way(path)
    if replaces is not None:
        replaces(path)
    make_dirs(path.parent)
    if sweep:
        sweep_temps(path)  # what killed runs left beside it (their pid is no live process)
    tmp = temp_name(path)
    _remove(tmp)
    if "rasterio" in sys.modules:  # a GDAL writer, maybe: libtiff's raw error lines go to GDAL's handler instead
        from geodino.io_tiff import route_libtiff_errors

        route_libtiff_errors()
    try:
        yield tmp
        if durable and tmp.is_file():
            fsync_path(tmp)
        _put_in_place(tmp, path, replaces)
        if durable:
            fsync_path(path.parent)
    except BaseException as exc:  # the body's error, or a refused or failed rename: raised without the temporary
        from geodino.io_gdal import gdal_refusal
        from geodino.storage_errors import named_refusal

        # GDAL's "Write failed" of a full disk: the OSError it stands for; any other refusal that names no file
        # (torch.save's, safetensors', a plain write()'s) names the output
        refused = gdal_refusal(exc, tmp, path) or named_refusal(exc, path)
        _discard(tmp)
        if refused is not None:
            raise refused from exc
        raise


def _put_in_place(tmp: Path, path: Path, replaces: Callable[[Path], None] | None) -> None:
    """Rename the finished temporary `tmp` to `path` (`atomic_path`'s last step; the caller removes `tmp` when this
    raises). An existing folder `path` is set aside first and put back when the second rename fails."""
    if not tmp.exists():
        raise RuntimeError(f"nothing was written to {tmp} for {path}")
    if tmp.is_file() and path.is_dir() and not path.is_symlink():  # a folder holds the name: keep it, say so
        raise InputError(
            f"output {path} is a folder, and this output is a file; remove or rename the folder, or choose another "
            "output path"
        )
    if tmp.is_file():
        set_default_mode(tmp)
    if tmp.is_dir() and path.exists():
        if replaces is not None:
            replaces(path)  # it may have changed while the output was written
            if _is_cwd(path):
                _replace_files(tmp, path)
                return
        old = aside_name(path, f".old-{writer_tag()}-{os.getpid()}", OLD_TAIL)
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            _put_back(old, path)
            raise
        _remove(old)
    else:
        os.replace(tmp, path)


def _put_back(old: Path, path: Path) -> None:
    """The new folder could not take `path`: rename the earlier output, set aside as `old`, back. When that fails
    too, `old` stays (`sweep_temps` keeps an aside while `path` is absent) and one stderr line says where it is."""
    try:
        os.replace(old, path)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        print(f"geodino: {path} could not be put back ({why}); its earlier content is in {old}", file=sys.stderr)


def _is_cwd(path: Path) -> bool:
    try:
        return path.resolve() == Path.cwd().resolve()
    except OSError:
        return False


def _replace_files(tmp: Path, path: Path) -> None:
    """Move the files of the finished folder `tmp` into `path` one by one (each rename atomic; `config.json`, what
    marks a model folder, last), drop the files of `path` the new output lacks, and remove `tmp`."""
    new = sorted((p for p in tmp.iterdir()), key=lambda p: (p.name == "config.json", p.name))
    keep = {p.name for p in new}
    for p in path.iterdir():
        if p.name not in keep and p.is_file():
            p.unlink(missing_ok=True)
    for p in new:
        os.replace(p, path / p.name)
    _remove(tmp)


def check_suffix(flag: str, path: Any, suffixes: Sequence[str], *, command: str, writes: str, hint: str = "") -> None:
    """The one rule for an output whose name says its format: a suffix (any case) not in `suffixes` is one
    ConfigError line naming the flag, what `command` writes there and the name to give (the first suffix), before
    anything is written (`--png x.jpg` held a PNG, `data stats --plot d.txt` a PNG, `--save-model m.txt` a
    safetensors file). `hint`: said after the name. The Python keyword (`--save-model` -> save_model=) follows the
    path: a Python caller passed that, not the flag."""
    from geodino.errors import ConfigError

    path = Path(path)
    if path.suffix.lower() not in suffixes:
        name = path.with_suffix(suffixes[0]).name if path.name.strip(".") else f"FILE{suffixes[0]}"  # ".", ".."
        key = flag.lstrip("-").replace("-", "_")
        raise ConfigError(
            f"{flag} {path} ({key}= in Python): {command} writes {writes}, not "
            f"{path.suffix or 'a file without suffix'}; name it {name}{hint}"
        )
