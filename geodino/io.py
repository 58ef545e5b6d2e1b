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
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from geodino.errors import GeoDinoError, InputError
from geodino.run_lock import RUN_LOCK, release_run_folder

T = TypeVar("T")


def _named(path: Path) -> Path:
    """`path` resolved when its last part is `.` or `..` (or it is empty): a temporary sibling and the folder
    swap need the real name (`Path(".").with_name(...)` fails; `..` would name a sibling of the wrong folder)."""
    return path.resolve() if path.name in ("", ".", "..") else path


def _split(name: str) -> tuple[str, str]:
    """A file name's stem and all its suffixes ("x.tar.gz" -> "x", ".tar.gz")."""
    suffix = "".join(Path(name).suffixes)
    return (name[: len(name) - len(suffix)], suffix) if suffix else (name, "")


@functools.cache
def writer_tag() -> str:
    """Where this process's pid means something: the host name, and on Linux a short hash of the machine's boot id
    and the pid namespace (containers may share a host name, or run on several nodes under one, and each has its own
    pids). Only [A-Za-z0-9_-], so that no dot reads as a suffix of the temporary."""
    import socket

    tag = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname() or "host")[:40]
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        space = f"{boot}|{os.readlink('/proc/self/ns/pid')}"  # "pid:[4026531836]"
        tag += "_" + hashlib.sha1(space.encode()).hexdigest()[:8]
    return tag


def temp_name(path: str | Path) -> Path:
    """The temporary sibling used while `path` is being written (same folder, so rename is atomic):
    `.STEM.tmp-TAG-PID.SUFFIX`, TAG from `writer_tag`, so that `sweep_temps` can tell a killed run's."""
    path = _named(Path(path).expanduser())
    stem, suffix = _split(path.name)
    return path.with_name(f".{stem}.tmp-{writer_tag()}-{os.getpid()}{suffix}")


STALE_AFTER_S = 24 * 3600  # a temporary of another host untouched this long is a killed run's (see the docstring)
_OWNER = r"(?:([A-Za-z0-9_-]+)-)?(\d+)"  # TAG-PID, or PID alone in the names of geodino before the tag


def _alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (in doubt, alive: another user's process, not a pid at all)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def _untouched_for(p: Path, seconds: float) -> bool:
    """Whether nothing in `p` (itself and, for a folder, everything inside: a store's own mtime does not change as
    chunks are written into its subfolders) was modified within the last `seconds` (stops at the first recent one)."""
    import itertools

    cutoff = time.time() - seconds
    for q in itertools.chain([p], (Path(r) / n for r, ds, fs in os.walk(p) for n in (*ds, *fs))):
        if q.lstat().st_mtime > cutoff:
            return False
    return True


def _killed(p: Path, tag: str | None, pid: int) -> bool:
    """Whether the temporary `p` of writer `tag`/`pid` belongs to a run that is gone (see the module docstring)."""
    if tag == writer_tag():
        return not _alive(pid)
    if tag is None and _alive(pid):  # an older geodino's name: a live pid here may be its writer
        return False
    return _untouched_for(p, STALE_AFTER_S)


def _size(p: Path) -> int:
    if not p.is_dir() or p.is_symlink():
        return p.lstat().st_size
    return sum((Path(r) / n).lstat().st_size for r, _, fs in os.walk(p) for n in fs)


def _size_text(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # unreachable


def sweep_temps(path: str | Path) -> list[Path]:
    """Remove the temporaries that killed runs left beside output `path`: its `temp_name`s (and names derived from
    them, e.g. GDAL's `TMP.L0.tif` overviews or `TMP.aux.xml`, when `path` has a suffix) and, once `path` itself is
    in place, the earlier output `atomic_path` set aside as `.NAME.old-TAG-PID`. Only those of writers that are gone
    (`_killed`); other targets' temporaries and live writers' are kept. Best effort: what cannot be listed or
    removed stays. Says once on stderr what was removed; returns it."""
    from geodino.errors import plural

    path = _named(Path(path).expanduser())
    stem, suffix = _split(path.name)
    derived = r"(?:\..+)?" if suffix else ""
    patterns = [re.compile(rf"\.{re.escape(stem)}\.tmp-{_OWNER}{re.escape(suffix)}{derived}")]
    if path.exists() or path.is_symlink():  # else the aside is the only whole copy of the earlier output: kept
        patterns.append(re.compile(rf"\.{re.escape(path.name)}\.old-{_OWNER}"))
    starts = (f".{stem}.tmp-", f".{path.name}.old-")
    removed: list[tuple[Path, int]] = []
    try:
        names = [e.name for e in os.scandir(path.parent) if e.name.startswith(starts)]
    except OSError:
        return []
    for name in names:
        m = next((m for pat in patterns if (m := pat.fullmatch(name))), None)
        p = path.parent / name
        try:
            if m is None or not _killed(p, m.group(1), int(m.group(2))):
                continue
            size = _size(p)
        except OSError:  # gone meanwhile, or not ours to read
            continue
        _remove(p)
        if not (p.exists() or p.is_symlink()):
            removed.append((p, size))
    if removed:
        what = plural(len(removed), "temporary", "temporaries")
        runs = "a killed run" if len(removed) == 1 else "killed runs"
        listed = ", ".join(f"{p.name} ({_size_text(n)})" for p, n in removed)
        print(f"geodino: removed {what} of {runs}: {listed}", file=sys.stderr)
    return [p for p, _ in removed]


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
    return folder


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
    if path.exists() and not true_or_false(overwrite, "overwrite"):
        raise InputError(
            f"output {path} already exists; pass --overwrite (overwrite=True in Python) to replace it, or choose "
            "another path"
        )
    refuse_folder_in_the_way(path)
    make_dirs(path.parent if str(path.parent) else Path("."))
    return path


def refuse_folder_in_the_way(path: Path) -> None:
    """A file output (one with a suffix other than .zarr) whose name an existing folder holds: --overwrite replaces
    outputs, never a folder of other content, so stop before any work with one line."""
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


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


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
    path: str | Path, *, overwrite: bool = True, replaces: Callable[[Path], None] | None = None, durable: bool = True
) -> Iterator[Path]:
    """Yield a temporary path to write to; on success rename it to `path`. When the body raises, or the rename is
    refused or fails, the temporary is removed and that error raised unchanged.

    Works for files and folders (Zarr stores). The rename is atomic for files; an existing folder is moved
    aside first and deleted after the new one is in place. `replaces(path)` (e.g. `check_replaceable_folder`)
    raises unless an existing `path` may be replaced; it runs before the write and again before the swap. A
    folder output that is the working directory (`.`) has its files replaced in place instead, so that the shell
    in it does not end up in a deleted folder.

    `durable`: a file is synced before its rename and its folder after (`fsync_path`); files inside a folder output
    (Zarr chunks) are not, one by one: too costly; often rewritten records (embed progress) pass durable=False.
    """
    path = _named(Path(path))
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists; pass --overwrite (overwrite=True in Python) to replace it")
    if not path.name:
        raise InputError(f"output {path} names no file or folder; choose an output path inside a folder")
    refuse_folder_in_the_way(path)
    if replaces is not None:
        replaces(path)
    make_dirs(path.parent)
    sweep_temps(path)  # what killed runs left beside it (their pid is no live process)
    tmp = temp_name(path)
    _remove(tmp)
    try:
        yield tmp
        if durable and tmp.is_file():
            fsync_path(tmp)
        _put_in_place(tmp, path, replaces)
        if durable:
            fsync_path(path.parent)
    except BaseException:  # the body's error, or a refused or failed rename: raised as it was, without the temporary
        _discard(tmp)
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
        old = path.with_name(f".{path.name}.old-{writer_tag()}-{os.getpid()}")
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


def json_text(obj: Any, **dumps: Any) -> str:
    """`json.dumps` that writes strict JSON: NaN and ±inf (an undefined R² on constant heights, say) become null,
    which every JSON reader accepts; Python's default writes bare NaN, which strict parsers reject."""
    import json
    import math

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # numpy / torch scalars
            return clean(v.item())
        return v

    return json.dumps(clean(obj), allow_nan=False, **dumps)


def vrt_sources(path: str | Path) -> list[str]:
    """The local files a GDAL VRT reads its pixels from (`SourceFilename`, resolved against the VRT's folder when
    `relativeToVRT="1"`), in order; [] when the XML does not parse."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    for el in root.iter("SourceFilename"):
        name = (el.text or "").strip()
        if name and not name.startswith("/vsi"):
            out.append(os.path.join(folder, name) if el.get("relativeToVRT") == "1" else name)
    return out


def content_stamp(path: str | Path, _depth: int = 0) -> str:
    """Size and newest mtime of a file, or the total size, newest mtime and count of every file inside a folder (a
    Zarr store or a dataset root: a file rewritten inside does not touch the folder's own mtime); a VRT adds the
    stamps of the files it reads; "?" for remote (/vsi, http) or missing paths. Cached features and embeddings key
    on it, so changed inputs are recomputed."""
    try:
        st = os.stat(path)
    except OSError:
        return "?"
    if not os.path.isdir(path):
        own = f"{st.st_size}|{st.st_mtime_ns}"
        if str(path).lower().endswith(".vrt") and _depth < 4:  # a VRT's pixels live in the files it names
            sources = "\n".join(f"{p}|{content_stamp(p, _depth + 1)}" for p in vrt_sources(path))
            return f"{own}|vrt:{hashlib.sha1(sources.encode()).hexdigest()[:16]}"
        return own
    return files_stamp(st.st_mtime_ns, (os.path.join(root, n) for root, _, names in os.walk(path) for n in names))


def files_stamp(newest: int, files: Iterable[str]) -> str:
    """'total size|newest mtime|count' of `files`, stat'ed now (files gone meanwhile are skipped), starting from a
    folder's own mtime `newest`: the stamp of a folder's content (`content_stamp`, probe dataset folders)."""
    size, count = 0, 0
    for p in files:
        try:
            f = os.stat(p)
        except OSError:
            continue
        size, newest, count = size + f.st_size, max(newest, f.st_mtime_ns), count + 1
    return f"{size}|{newest}|{count}"
