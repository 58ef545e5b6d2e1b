"""Which rows of a cached feature set were computed from image files that have changed since it was cached.

The feature-cache key names a dataset folder by its files' total size, newest modification time and count
(`folder_listing.folder_stamp`), which misses an image replaced by another of the same size whose time was kept
(`cp -p`, `rsync -t`, an archive extracted again): the probe then scored the old image's features. So each cache
entry `<key>.safetensors` of a dataset made of files has a record beside it, `<key>.files.json`: for each row, its
file as it was before its pixels were read (`embed.file_stamps.file_record`: size, mtime in ns, the sha256 of its
first 64 KiB, inode change time and number). A cache hit checks each file by the rule `embed --resume` and
`embed images --resume` use (`file_stamps.recheck`): stat first, no read for a file whose stat is as recorded, its
head hashed when only its change time or inode moved; a changed file means its row is stale. Stale rows are
computed again in the batches a full run puts them in (the same inputs side by side: the same bits, unless a full
run is large enough to be compiled and the redo is not), patched into the entry and recorded; when that cannot be
done (another input size or numerics) the split is extracted anew.

An entry written before records nothing: it is adopted, its rows trusted unless their file changed (by its change
time) after the entry was written, and its record written. A file changed within `file_stamps.RACY_NS` of being
recorded (the time's resolution plus a file server's clock skew) may change again unseen within that resolution, so
it is hashed on the next hit too.

Entry and record are replaced one after the other, each atomically, so runs sharing a cache (a job array) could pair
an entry with the record of another write of it: one run read the entry, another replaced entry and record, and the
first checked the old entry's rows against the new record, which vouched for an image changed since the old rows.
So each entry names its record (`entry_tag`, in its metadata; the record holds it as `entry`, a digest of the rows
the entry was computed from: the same files give the same tag, and the same bytes), and an entry whose record names
another write is extracted anew. An entry and a record written before the tag both name none and stay a pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodino.errors import plural

__all__ = ["current_features", "entry_tag", "keep_record", "take_record"]

RECORD_VERSION = 1


def record_path(entry: Path) -> Path:
    """`<key>.files.json` beside the cache entry `<key>.safetensors`."""
    return entry.with_name(entry.stem + ".files.json")


def row_paths(dataset: Any) -> tuple[list[str], list[str]] | None:
    """(path, name) of the file of each row of `dataset`, in row order; the name is relative to its root where the
    file lies under it. None for a dataset not made of files (nothing to record: the folder stamp keys it)."""
    files, indices = getattr(dataset, "files", None), getattr(dataset, "indices", None)
    if not files or indices is None:
        return None
    root = str(getattr(dataset, "root", "")) + os.sep  # resolved; the files may name it through a link
    paths = [os.path.abspath(files[i]) for i in indices]
    real: dict[str, str] = {}  # folder -> its resolved path, once per folder

    def name(p: str) -> str:
        if not p.startswith(root):
            folder, base = os.path.split(p)
            p = os.path.join(real.setdefault(folder, os.path.realpath(folder)), base)
        return p[len(root) :] if p.startswith(root) else p

    return paths, [name(p) for p in paths]


def _row(path: str, name: str) -> list[Any]:
    """[name, file_state, ctime_ns, inode] of a file now (`file_stamps.file_record`)."""
    from geodino.embed.file_stamps import file_record

    return [name, *file_record(Path(path))]


def take_record(dataset: Any) -> dict[str, Any] | None:
    """The record of `dataset`'s files as they are now (before its pixels are read); None when it has no files."""
    rows = row_paths(dataset)
    if rows is None:
        return None
    taken = time.time_ns()
    return {"version": RECORD_VERSION, "taken_ns": taken, "files": [_row(p, n) for p, n in zip(*rows)]}


def entry_tag(record: dict[str, Any] | None) -> str:
    """The tag that pairs an entry with its record: a digest of the record's rows ("" for a dataset without files)."""
    if record is None:
        return ""
    return hashlib.sha256(json.dumps(record["files"], separators=(",", ":")).encode()).hexdigest()[:32]


class _OtherWrite(Exception):
    """The record beside an entry belongs to another write of it (a run beside this one replaced both since)."""


def keep_record(entry: Path, record: dict[str, Any] | None, tag: str = "") -> None:
    """Write `record` beside the cache entry just written (whose `entry_tag` is `tag`); a refused write leaves none
    (the entry is then adopted next time: its files are checked by their change time)."""
    from geodino.io import atomic_path

    if record is None:
        return
    try:
        with atomic_path(record_path(entry), durable=False) as tmp:
            tmp.write_text(json.dumps({**record, "entry": tag}, separators=(",", ":")))
    except OSError:  # the cache is optional; the entry's write already warned about a refusing folder
        return


def _read_record(entry: Path, names: list[str]) -> dict[str, Any] | None:
    """The record beside `entry` when it reads and names the same files in the same order, each row of the form
    `_row` writes, else None (a damaged record is one lost: the entry is adopted)."""
    try:
        record = json.loads(record_path(entry).read_text())
        files = record["files"]
        if record.get("version") != RECORD_VERSION or not isinstance(record.get("taken_ns"), int):
            return None
        if len(files) != len(names) or not all(_row_reads(row, name) for row, name in zip(files, names)):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return record


def _row_reads(row: Any, name: str) -> bool:
    """Whether `row` is `[name, state (str or None), ctime_ns (int), inode (int)]`, as `_row` writes it."""
    return (
        isinstance(row, list)
        and len(row) == 4
        and row[0] == name
        and (row[1] is None or isinstance(row[1], str))
        and all(isinstance(v, int) and not isinstance(v, bool) for v in row[2:])
    )


def _same(was: list[Any], path: str, taken_ns: int) -> tuple[bool, list[Any]]:
    """(unchanged, row now) of one recorded row, by `file_stamps.recheck` (stat first, the head hashed only when the
    stat moved); the row recorded when nothing was hashed."""
    from geodino.embed.file_stamps import recheck

    same, now = recheck(Path(path), was[1], was[2:], taken_ns)
    return same, was if now is None else [was[0], *now]


def stale_rows(
    entry: Path, dataset: Any, tag: str = "", written: int = 0
) -> tuple[list[int], dict[str, Any], bool] | None:
    """(stale rows, the record of the rows kept, whether that record differs from the one on disk) of the cache
    entry `entry` of `dataset` as read (its `entry_tag` is `tag`, its mtime `written`: that of the file read, not
    of one another run put in its place since); None when the dataset is not made of files. `_OtherWrite` when the
    record on disk is that of another write of the entry."""
    rows = row_paths(dataset)
    if rows is None:
        return None
    paths, names = rows
    start = time.time_ns()
    record = _read_record(entry, names)
    if record is not None and record.get("entry", "") != tag:
        raise _OtherWrite(entry)
    if record is None:  # written before records were kept (or its record lost): adopted, by change time
        from geodino.embed import file_stamps

        stale = []
        for i, p in enumerate(paths):
            try:
                if os.stat(p).st_ctime_ns >= written - file_stamps.RACY_NS:
                    stale.append(i)
            except OSError:
                stale.append(i)
        new = take_record(dataset) or {}
        new["taken_ns"] = start
        return stale, new, True
    stale, kept, changed = [], [], False
    for i, (row, p) in enumerate(zip(record["files"], paths)):
        same, now = _same(row, p, record["taken_ns"])
        if not same:
            stale.append(i)
        changed = changed or now is not row
        kept.append(now)
    return stale, {"version": RECORD_VERSION, "taken_ns": start, "files": kept}, changed


def current_features(
    fs: Any,
    dataset: Any,
    entry: Path,
    *,
    batch_size: int,
    redo: Callable[[Any], Any],
    save: Callable[[Path, Any, str], bool],
    tag: str = "",
    written: int = 0,
) -> Any:
    """The cached FeatureSet `fs` of `dataset` (read from `entry`, whose `entry_tag` is `tag` and mtime `written`:
    those of the file read) with the rows of changed files computed again by `redo(subset)` in their batches of a
    full run, the entry and its record rewritten (`save(entry, fs, tag)`); `fs` itself when nothing changed, None
    when the split must be extracted anew (a record that does not fit or is another write's, another transform)."""
    try:
        found = stale_rows(entry, dataset, tag, written)
    except _OtherWrite:
        return None
    if found is None:
        return fs
    stale, record, changed = found
    if len(record["files"]) != len(fs):
        return None
    if not stale:
        if changed:
            keep_record(entry, record, tag)
        return fs
    rows = _batch_rows(stale, len(fs), batch_size)
    if not hasattr(dataset, "subset"):
        return None
    n, eg = len(stale), record["files"][stale[0]][0]
    print(
        f"geodino: {plural(n, 'image')} of {getattr(dataset, 'name', '?')} ({getattr(dataset, 'split', '?')}) changed "
        f"since its features were cached ({'' if n == 1 else 'e.g. '}{eg}); computing the features of "
        f"{plural(-(-len(rows) // batch_size), 'batch', 'batches')} ({plural(len(rows), 'image')}) again",
        file=sys.stderr,
    )
    sub = dataset.subset(rows)
    fresh = take_record(sub) or {"files": []}  # before the pixels are read
    part = redo(sub)
    if part.meta.get("transform") != fs.meta.get("transform") or part.cls.shape[1:] != fs.cls.shape[1:]:
        return None  # another input size or numerics than the entry's: the whole split again
    if part.targets.shape[1:] != fs.targets.shape[1:] or part.targets.dtype != fs.targets.dtype:
        return None
    at = list(rows)
    fs.cls[at], fs.patch_mean[at], fs.targets[at] = part.cls, part.patch_mean, part.targets
    for i, row in zip(rows, fresh["files"]):
        record["files"][i] = row
    fs.from_cache = False
    if save(entry, fs, tag := entry_tag(record)):
        keep_record(entry, record, tag)
    return fs


def _batch_rows(stale: list[int], n: int, batch_size: int) -> list[int]:
    """Every row of the batches (of `batch_size`, as a full run makes them) that hold a stale row: each is computed
    with the same neighbours as in a full run."""
    batches = sorted({i // batch_size for i in stale})
    return [i for b in batches for i in range(b * batch_size, min((b + 1) * batch_size, n))]
