"""The sha256 of a weights file (or folder), kept in a per-user cache so that it is read once per file, not once
per process: a batch job that runs `geodino embed` once per scene otherwise re-read a ViT-L file (~1.2 GB, ~2.8 s)
for every scene, only to record its digest (`FrozenBackbone.weights_sha256`, `model_file_sha256` in outputs).

Where: `digests/` in geodino's user cache folder (`geodino.user_cache`: `$GEODINO_CACHE_DIR`, else
`$XDG_CACHE_HOME/geodino`, else `~/.cache/geodino`), one small JSON file per weights path (named by a hash of its
resolved path). `GEODINO_DIGEST_CACHE=off` (or 0, false, no) turns the cache off: every process hashes again.

Trust: an entry is used only when the file's size, mtime and ctime (in ns) and inode (for a folder: those of every file
in it, by name) are what they were when it was hashed; anything else is hashed again. A digest is stored only when the
file did not change while it was read (stat before and after) and its last change is known to be older than `RACY_NS`
(`geodino.io_stamps`, the window every stat-keyed check in geodino keeps: the timestamps' resolution plus a file
server's clock skew): a write in the same timestamp tick as our stat would leave the stat unchanged. Known by the
ctime (which every change sets to the file system's now; the mtime can be set to any time, `touch -d`, an archive
made on a machine whose clock was ahead, so a file with a future mtime was never stored and every process hashed it
again) older than `RACY_NS` before the stat, by this machine's clock; or, for a change that looks younger (a file
server's clock ahead of this one puts it in the future for as long as the skew), by two sightings of the same stat
`RACY_NS` apart: the first leaves a pending entry (its stat and when it was seen, no digest), and the hash taken at
a sighting that late is stored. So a file is hashed at most until the window has passed since it was first seen.

Failure: a damaged or foreign entry, an unreadable or unwritable cache folder, no home folder: the digest is computed as
without the cache; never an error, never a warning (the cache only saves time). A setting that cannot be used is one
ConfigError naming it: `GEODINO_DIGEST_CACHE` neither on nor off, a relative `GEODINO_CACHE_DIR` (`geodino.user_cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from geodino.io_stamps import RACY_NS
from geodino.user_cache import CACHE_DIR_ENV, switched_cache_dir

__all__ = ["DIR_ENV", "SWITCH_ENV", "cached_sha256", "digest_cache_dir", "sha256_path"]

DIR_ENV = CACHE_DIR_ENV
SWITCH_ENV = "GEODINO_DIGEST_CACHE"

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_path(path: Path) -> str:
    """sha256 of a file (what `sha256sum` prints), or of the files of a folder (names and contents); no cache."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def digest_cache_dir() -> Path | None:
    """The folder the digests are kept in, or None when `GEODINO_DIGEST_CACHE` turns the cache off or no folder can
    be named (no home). A value of `GEODINO_DIGEST_CACHE` that is neither on nor off is a ConfigError naming it."""
    return switched_cache_dir(SWITCH_ENV, "digests")


def cached_sha256(path: Path) -> str:
    """`sha256_path(path)`, read from the digest cache when the entry's stat matches the file's (module docstring);
    otherwise computed and, when the file is settled, stored."""
    folder = digest_cache_dir()
    if folder is None:
        return sha256_path(path)
    try:
        name = str(path.resolve())
        seen = time.time_ns()  # before the stat: the change it shows happened before this
        before = _state(path)
    except OSError:  # a missing or unreadable file: the error sha256_path raises
        return sha256_path(path)
    entry = folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".json")
    stored = _read(entry, name, before)
    found = stored.get("sha256") if stored is not None else None
    if isinstance(found, str) and _HEX64.fullmatch(found):
        return found
    digest = sha256_path(path)
    with contextlib.suppress(OSError):
        if _state(path) != before:
            return digest
        first = stored.get("seen_ns") if stored is not None else None
        pending = first if isinstance(first, int) and not isinstance(first, bool) else None
        if _settled(before, seen) or (pending is not None and seen - pending >= RACY_NS):
            _write(entry, {"path": name, "state": before, "sha256": digest})
        elif pending is None:  # first sighting of this stat: the one a later process measures the window from
            _write(entry, {"path": name, "state": before, "seen_ns": seen})
    return digest


def _state(path: Path) -> list[list[Any]]:
    """What says a file is unchanged: [name, size, mtime_ns, ctime_ns, inode] of the file (name ""), or of each
    file of a folder (its name inside the folder), in `sha256_path`'s order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return [[str(f.relative_to(path)), *_stat(f)] for f in files]
    return [["", *_stat(path)]]


def _stat(f: Path) -> list[int]:
    st = f.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _settled(state: list[list[Any]], seen: int) -> bool:
    """Whether every file's last change (its ctime: the mtime can be set to any time) was more than `RACY_NS` before
    `seen` (this machine's time_ns() before the stat)."""
    newest = max((row[3] for row in state), default=0)
    return seen - newest > RACY_NS


def _read(entry: Path, name: str, state: list[list[Any]]) -> dict[str, Any] | None:
    """The entry `entry` holds for `name` at `state` (a digest, or a pending entry's first sighting), or None: no
    entry, a damaged one, another path's (a hash collision of names) or one of the file as it was before."""
    try:
        stored = json.loads(entry.read_text())
    except (OSError, ValueError):  # none, unreadable, or damaged (a kill mid-write of a non-atomic copy)
        return None
    if not isinstance(stored, dict) or stored.get("path") != name or stored.get("state") != state:
        return None
    return stored


def _write(entry: Path, payload: dict[str, Any]) -> None:
    """Store an entry atomically (`geodino.io.atomic_path`); a folder that refuses it is passed over silently."""
    from geodino.errors import GeoDinoError
    from geodino.io import atomic_path

    with contextlib.suppress(OSError, GeoDinoError), atomic_path(entry, durable=False) as tmp:
        tmp.write_text(json.dumps(payload))
