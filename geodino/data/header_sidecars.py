"""The georeferencing sidecars GDAL reads beside a raster (world files, a MapInfo TAB file), for the header cache's
stamp (`geodino.data.headers`): a `.tfw` written beside a TIFF without georeferencing of its own gives it a
transform without touching the file, and the cached header (in memory and in `geodino.data.header_store`) kept
the identity transform for it.

Found from the folder's listing, not by a stat of each name GDAL tries (up to eight a file: `.tfw`, `.tifw`,
`.wld`, `.tab`, each in lower then upper case): one listing per folder and process, kept while the folder's stat
(mtime, ctime, inode) is unchanged and settled (`io_stamps.changed_recently`), so a chip folder costs one stat of
the folder per header asked, on a network file system too. A name added to or removed from a folder moves its
mtime and ctime, so the listing is read again then.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict

__all__ = ["georef_stamp"]

FOLDERS = 4096  # listings kept (least recently asked go first)
_LISTINGS: OrderedDict[str, tuple[tuple[int, int, int], dict[str, tuple[str, ...]]]] = OrderedDict()
_LOCK = threading.Lock()

SideStamp = tuple[tuple[str, int, int, int, int], ...]
"""(suffix, mtime, size, ctime, inode) of each georeferencing sidecar present, in a fixed order; () when none."""


def georef_stamp(name: str) -> SideStamp:
    """The stamp of the world and TAB files GDAL would read for the local raster `name`: for `a.tif`, `a.tfw`,
    `a.tifw`, `a.wld` and `a.tab`, in lower or upper case (GDAL's `GDALReadWorldFile2` and the GTiff driver's
    TABFILE georeferencing source)."""
    folder, base = os.path.split(os.path.abspath(name))
    stem, dot, ext = base.rpartition(".")
    if not dot or not ext:
        return ()
    present = _listing(folder).get(stem)
    if not present or len(present) == 1:  # only the raster itself
        return ()
    out = []
    for suffix in _suffixes(ext):
        if suffix in present:
            side = f"{stem}.{suffix}"
            try:
                st = os.stat(os.path.join(folder, side))
            except OSError:
                continue
            out.append((suffix, st.st_mtime_ns, st.st_size, st.st_ctime_ns, st.st_ino))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _suffixes(ext: str) -> tuple[str, ...]:
    """The sidecar suffixes GDAL tries for a raster of suffix `ext` (no dot), lower case first."""
    wanted = (f"{ext[0]}{ext[-1]}w", f"{ext}w", "wld", "tab")
    return tuple(dict.fromkeys(x for w in wanted for x in (w.lower(), w.upper())))


def _listing(folder: str) -> dict[str, tuple[str, ...]]:
    """The names in `folder` by stem (`a` -> (`tif`, `tfw`) for a.tif and a.tfw; empty when it does not list), from
    the memo while the folder is unchanged and settled."""
    now = time.time_ns()  # before the stat: a change it shows happened before this
    try:
        st = os.stat(folder)
    except OSError:
        return {}
    key = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _LOCK:
        kept = _LISTINGS.get(folder)
        if kept is not None and kept[0] == key:
            _LISTINGS.move_to_end(folder)
            return kept[1]
    from geodino.io_stamps import changed_recently  # hashlib's import, only when a folder is listed

    try:
        listed = os.listdir(folder)
    except OSError:
        return {}
    by_stem: dict[str, list[str]] = {}
    for n in listed:
        stem, dot, ext = n.rpartition(".")
        if dot:
            by_stem.setdefault(stem, []).append(ext)
    names = {k: tuple(v) for k, v in by_stem.items()}
    if not changed_recently((st.st_ctime_ns,), now):
        with _LOCK:
            _LISTINGS[folder] = (key, names)
            while len(_LISTINGS) > FOLDERS:
                _LISTINGS.popitem(last=False)
    return names


def forget() -> None:
    """Drop the kept listings (a test's "new process")."""
    with _LOCK:
        _LISTINGS.clear()
