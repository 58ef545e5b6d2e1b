"""Temporary names of atomic writes and the sweep of those killed runs left (split from `geodino.io`, which
re-exports every name; see its docstring for the naming and the rule).

`temp_name` is the `.STEM.tmp-TAG-PID.SUFFIX` sibling an output is written under; `sweep_temps` removes the
temporaries of writers that are gone (`_killed`: our TAG and a dead pid at once, another TAG only when untouched
for `STALE_AFTER_S`). The sweep of a gather target `NAME.full.pt` also removes the `.NAME.full-HOST-PID.pt` copies
geodino wrote before its gathers used `temp_name` (`_legacy_gather`: by the same rule, HOST the raw host name).
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
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "NAME_MAX",
    "OLD_TAIL",
    "STALE_AFTER_S",
    "aside_name",
    "fit_name",
    "legacy_gather_owner",
    "sweep_held_folder",
    "sweep_temps",
    "temp_name",
    "writer_tag",
]


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


NAME_MAX = 255  # bytes of one file name on Linux and macOS file systems (ext4, XFS, APFS, ...)
# what a temporary adds to STEM.SUFFIX: `.`, `.tmp-`, TAG (at most 49), `-`, PID (at most 10), and a name GDAL
# derives from it (`.L12.tif.aux.xml` of an overview level)
_TEMP_EXTRA = 1 + 5 + 49 + 1 + 10 + 16


def fit_name(name: str, room: int) -> str:
    """`name` when it has at most `room` UTF-8 bytes, else its start (cut between characters) and `~` and 8 hex
    of its sha1, `room` bytes in all: hidden siblings of an output (temporaries, asides, records) of a long name
    (a 250-byte one) went past NAME_MAX, and the write failed. The same name gives the same cut, so a sweep finds
    what a writer left."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= room:
        return name
    head = raw[: max(room - 9, 1)].decode("utf-8", "ignore") or name[:1]
    return f"{head}~{hashlib.sha1(raw).hexdigest()[:8]}"


def _temp_parts(name: str) -> tuple[str, str]:
    """The stem and suffix a temporary of output `name` carries (`_split`), the stem cut (`fit_name`) when the
    temporary would pass NAME_MAX; a suffix too long to leave room keeps its last part only (the one formats are
    told by), or none."""
    stem, suffix = _split(name)
    if len(name.encode("utf-8", "surrogateescape")) + _TEMP_EXTRA <= NAME_MAX:
        return stem, suffix
    if len(suffix.encode("utf-8", "surrogateescape")) > 32:
        suffix = Path(name).suffix if len(Path(name).suffix.encode("utf-8", "surrogateescape")) <= 16 else ""
        stem = name[: len(name) - len(suffix)]
    return fit_name(stem, NAME_MAX - _TEMP_EXTRA - len(suffix.encode("utf-8", "surrogateescape"))), suffix


OLD_TAIL = 5 + 49 + 1 + 10  # bytes of an aside's `.old-TAG-PID` at most (`aside_name`'s reserve for it)


def aside_name(path: Path, tail: str, reserve: int = 0) -> Path:
    """The hidden sibling `.NAME{tail}` of `path` (`.NAME.old-TAG-PID`, `.NAME.partial`, `.NAME.lock`), NAME cut
    (`fit_name`) to stay within NAME_MAX with `reserve` bytes (at least the tail's) after it: a tail that varies
    (TAG, PID) passes its most, so that its writer and a sweep cut NAME alike."""
    room = NAME_MAX - 1 - max(reserve, len(tail.encode("utf-8", "surrogateescape")))
    return path.with_name(f".{fit_name(path.name, room)}{tail}")


def temp_name(path: str | Path) -> Path:
    """The temporary sibling used while `path` is being written (same folder, so rename is atomic):
    `.STEM.tmp-TAG-PID.SUFFIX`, TAG from `writer_tag`, so that `sweep_temps` can tell a killed run's; STEM cut
    for a long name (`_temp_parts`)."""
    path = _named(Path(path).expanduser())
    stem, suffix = _temp_parts(path.name)
    tmp = path.with_name(f".{stem}.tmp-{writer_tag()}-{os.getpid()}{suffix}")
    if (stem, suffix) != _split(path.name):  # cut: `temp_target` cannot read the output's name back from it
        _CUT[tmp.name] = path.name
        while len(_CUT) > 1024:
            del _CUT[next(iter(_CUT))]
    return tmp


_CUT: dict[str, str] = {}  # name of a temporary whose STEM `temp_name` cut -> its output's name (this process's)


STALE_AFTER_S = 24 * 3600  # a temporary of another host untouched this long is a killed run's (see the docstring)
_OWNER = r"(?:([A-Za-z0-9_-]+)-)?([0-9]+)"  # TAG-PID, or PID alone before the tag (ASCII digits, as os.getpid)


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


def _remove_said(doomed: list[tuple[Path, int]]) -> list[Path]:
    """Remove each (path, size) of a sweep and say once on stderr what went (one line); returns what went."""
    from geodino.errors import plural

    removed = []
    for p, size in doomed:
        _remove(p)
        if not (p.exists() or p.is_symlink()):
            removed.append((p, size))
    if removed:
        what = plural(len(removed), "temporary", "temporaries")
        runs = "a killed run" if len(removed) == 1 else "killed runs"
        listed = ", ".join(f"{p.name} ({_size_text(n)})" for p, n in removed)
        print(f"geodino: removed {what} of {runs}: {listed}", file=sys.stderr)
    return [p for p, _ in removed]


def sweep_temps(path: str | Path) -> list[Path]:
    """Remove the temporaries that killed runs left beside output `path`: its `temp_name`s (and names derived from
    them, e.g. GDAL's `TMP.L0.tif` overviews or `TMP.aux.xml`, when `path` has a suffix) and, once `path` itself is
    in place, the earlier output `atomic_path` set aside as `.NAME.old-TAG-PID`. Only those of writers that are gone
    (`_killed`); other targets' temporaries and live writers' are kept. Best effort: what cannot be listed or
    removed stays. Says once on stderr what was removed; returns it."""
    path = _named(Path(path).expanduser())
    stem, suffix = _temp_parts(path.name)
    derived = r"(?:\..+)?" if suffix else ""
    patterns = [re.compile(rf"\.{re.escape(stem)}\.tmp-{_OWNER}{re.escape(suffix)}{derived}")]
    aside = aside_name(path, ".old-", OLD_TAIL).name
    if path.exists() or path.is_symlink():  # else the aside is the only whole copy of the earlier output: kept
        patterns.append(re.compile(rf"{re.escape(aside)}{_OWNER}"))
    starts = (f".{stem}.tmp-", aside, *_legacy_gather_start(path))
    doomed: list[tuple[Path, int]] = []
    try:
        names = [e.name for e in os.scandir(path.parent) if e.name.startswith(starts)]
    except OSError:
        return []
    for name in names:
        m = next((m for pat in patterns if (m := pat.fullmatch(name))), None)
        p = path.parent / name
        try:
            if m is None and (legacy := _legacy_gather(path, name)) is not None:
                if not legacy:
                    continue
            elif m is None or not _killed(p, m.group(1), int(m.group(2))):
                continue
            doomed.append((p, _size(p)))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return _remove_said(doomed)


# `.STEM.tmp-TAG-PID.SUFFIX` (`temp_name`) or `.NAME.tmp-PID` (older geodino: `.last.ckpt.tmp-PID`): its target
# is STEM.SUFFIX (NAME); TAG has no dots, so the owner ends at the first dot after `.tmp-`
_ANY_TEMP = re.compile(r"\.(.+?)\.tmp-" + _OWNER + r"(\..*)?")


def temp_target(path: str | Path) -> Path | None:
    """The output a temporary name is written for (`.STEM.tmp-TAG-PID.SUFFIX` -> STEM.SUFFIX), None for any other
    name: errors name the file the user asked for, not its hidden temporary."""
    path = Path(path)
    if path.name in _CUT:  # a long name's temporary: its STEM was cut (a storage line named `NAME~HASH.tif`)
        return path.with_name(_CUT[path.name])
    m = _ANY_TEMP.fullmatch(path.name)
    return None if m is None else path.with_name(m[1] + (m[4] or ""))


def sweep_held_folder(
    folder: str | Path, held: Callable[[str], bool], skip: Callable[[str], bool] = lambda name: False
) -> list[Path]:
    """Remove from `folder` the temporaries (files, folders, links) whose writers are gone; names `skip` accepts
    stay. A temporary whose target `held` accepts is written only by the holder of the folder (a run's checkpoints,
    the folder locked by the caller), so it goes unless its writer runs on this host (this `writer_tag` and a live
    pid): another host's or an older geodino's is a killed run's. Any other follows `_killed`, as in `sweep_temps`.
    Says once on stderr what was removed; returns it."""
    folder = Path(folder).expanduser()
    doomed: list[tuple[Path, int]] = []
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.startswith(".") and ".tmp-" in e.name)
    except OSError:  # no such folder (yet)
        return []
    for name in names:
        if skip(name) or (m := _ANY_TEMP.fullmatch(name)) is None:
            continue
        p, target, tag, pid = folder / name, m[1] + (m[4] or ""), m[2], int(m[3])
        try:
            mine_alive = tag == writer_tag() and _alive(pid)
            if mine_alive or not (held(target) or _killed(p, tag, pid)):
                continue
            doomed.append((p, _size(p)))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return _remove_said(doomed)


_GATHER = ".full.pt"  # `geodino.models.checkpoints.files.GATHER_SUFFIX`: a sharded folder NAME's gather target


def _legacy_gather_start(path: Path) -> tuple[str, ...]:
    """For a gather target `NAME.full.pt`: the start of the names geodino before the temp_name gather wrote,
    `.NAME.full-HOST-PID.pt` (HOST: the raw host name, dots and all)."""
    return (f".{path.name[: -len(_GATHER)]}.full-",) if path.name.endswith(_GATHER) else ()


_LEGACY_GATHER = re.compile(r"\.(.+)-([0-9]+)\.pt")  # `.NAME.full-HOST` and PID (the last `-DIGITS` before `.pt`)
_HOST = re.compile(r"[A-Za-z0-9._-]+")  # a raw host name (`socket.gethostname()`: letters, digits, dots, hyphens)


def legacy_gather_owner(name: str) -> tuple[str, str, int] | None:
    """(NAME, HOST, PID) when `name` is `.NAME.full-HOST-PID.pt`, the gather copy geodino before the temp_name gather
    wrote of sharded folder NAME; else None. NAME and HOST may both hold `.full-` (a checkpoint `my.full-run.ckpt`):
    the split is where HOST is this host's name when one is (its pid then tells whether the writer is gone), else at
    the last `.full-` (HOST without one). HOST holds host-name characters only, so a user's `.X.full-my copy-1.pt`
    is no copy. Every sweep (the target's own, `files.sweep_gathers`) splits a name the same way."""
    import socket

    m = _LEGACY_GATHER.fullmatch(name)
    if m is None:
        return None
    head, sep = m.group(1), ".full-"
    splits = [
        (head[:i], head[i + len(sep) :])
        for i in range(1, len(head))
        if head.startswith(sep, i) and _HOST.fullmatch(head[i + len(sep) :])
    ]
    if not splits:
        return None
    here = [s for s in splits if s[1] == socket.gethostname()]
    folder, host = (here or splits)[-1]
    return folder, host, int(m.group(2))


def _legacy_gather(path: Path, name: str) -> bool | None:
    """None when `name` is no legacy gather copy of target `path` (`legacy_gather_owner`); else whether its writer
    is gone: a dead pid on this host (the host name it records), another host's only when untouched for
    `STALE_AFTER_S`. Only for a sharded checkpoint's target: NAME a `.ckpt` (Lightning's and geodino's checkpoint
    names, rotated away or not) or a folder beside it; any output `X.full.pt` (an export) otherwise took a user's
    `.X.full-backup-2.pt` for a copy and deleted it once a day old."""
    import socket

    owner = legacy_gather_owner(name) if path.name.endswith(_GATHER) else None
    if owner is None or owner[0] + _GATHER != path.name:
        return None
    if not (owner[0].endswith(".ckpt") or (path.parent / owner[0]).is_dir()):
        return None
    p = path.parent / name
    if not p.is_file() or p.is_symlink():
        return False
    if owner[1] == socket.gethostname():
        return not _alive(owner[2])
    return _untouched_for(p, STALE_AFTER_S)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)
