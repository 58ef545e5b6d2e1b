"""Cached recursive listings of dataset folders, and the stamps made from them.

`list_folder` walks a folder tree once per process and reuses the listing while no folder in it has changed,
so the train, val and test splits of a probe dataset (its stamp, a suite's other backbones, `geodino embed images`)
share one walk of a large folder instead of one or more each; `folder_stamp` is the feature-cache stamp of a
dataset folder from that listing. Its own module: file-system caching, not a dataset format; `eval/datasets.py`
re-exports both names. `warn_empty_class_folders` reads a class-per-folder root the same way: which folders the
listing found no image in.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from geodino.data.paths import MAC_ZIP_DIR
from geodino.io import content_stamp, files_stamp
from geodino.io_stamps import changed_recently  # a folder changed this recently may change again unseen


@dataclass(frozen=True)
class _Listing:
    folders: tuple[tuple[str, tuple[int, int, int]], ...]  # every folder walked, its (mtime, ctime, inode) then
    files: tuple[str, ...]  # every file under the root, relative to it, sorted


_LISTINGS: dict[str, _Listing] = {}  # resolved root -> its listing (kept while no folder in it has changed)
MAX_LISTINGS = 16


def _walk(root: str) -> _Listing:
    """Every folder and file under `root`. Folders directly under it are followed when they are symlinks (a class
    folder linked from elsewhere), deeper ones are not, as `Path.rglob` does; unreadable entries are skipped."""
    folders: list[tuple[str, tuple[int, int, int]]] = []
    files: list[str] = []
    stack = [("", 0)]
    while stack:
        rel, depth = stack.pop()
        path = os.path.join(root, rel) if rel else root
        try:
            st = os.stat(path)  # before the listing: a change during it shows in the next stat
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        folders.append((path, _stamp(st)))
        for e in entries:
            sub = os.path.join(rel, e.name) if rel else e.name
            try:
                if e.is_dir(follow_symlinks=depth == 0):
                    stack.append((sub, depth + 1))
                elif e.is_file():
                    files.append(sub)
            except OSError:
                continue
    return _Listing(tuple(folders), tuple(sorted(files)))


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    """(mtime, ctime, inode) of a folder: an entry added, removed or renamed moves its mtime and ctime; the mtime
    alone can be set back (`touch -d`, `cp -p`, `rsync -t` or tar restoring it after adding a file), the ctime not."""
    return st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _unchanged(listing: _Listing) -> bool:
    for path, stamp in listing.folders:
        try:
            if _stamp(os.stat(path)) != stamp:
                return False
        except OSError:
            return False
    return True


def list_folder(root: str | Path) -> tuple[str, ...]:
    """Every file under `root` (paths relative to it, sorted), listed on disk once per root per process: the train,
    val and test splits of a probe dataset (and its stamp, and a suite's other backbones) share one walk of a large
    folder (EuroSAT: 27,000 files) instead of one or more each. The listing is reused while no folder in the tree
    has a new mtime, ctime or inode (a file added, removed or renamed anywhere changes its folder's; its mtime may
    have been set back since, its ctime not); a folder changed (by its ctime) within `io_stamps.RACY_NS` (the times'
    resolution plus a file server's clock skew) is listed again next time, as its stat may not show a change made
    within its resolution (`io_stamps.changed_recently`, the header cache's rule)."""
    return _listing(os.path.realpath(root)).files


def _listing(key: str) -> _Listing:
    """The listing of the resolved root `key`: the cached one while no folder in it has changed, else a new walk."""
    cached = _LISTINGS.get(key)
    if cached is not None and _unchanged(cached):
        return cached
    _LISTINGS.pop(key, None)
    start = time.time_ns()
    listing = _walk(key)
    if not changed_recently((stamp[1] for _, stamp in listing.folders), start):
        while len(_LISTINGS) >= MAX_LISTINGS:
            _LISTINGS.pop(next(iter(_LISTINGS)))
        _LISTINGS[key] = listing
    return listing


def desktop_litter(rel: str | Path) -> bool:
    """Whether a path under a dataset folder (relative to it) is none of its data: it or a folder above it is hidden
    (a `.DS_Store` Finder rewrites, the `._photo.jpg` AppleDouble file a copy from a Mac leaves beside each file, a
    `.thumbnails/` folder) or it lies in the `__MACOSX/` folder of a zip made on a Mac. One rule for the class
    folders a probe reads (`datasets._class_folders`) and the stamp of a dataset root (`folder_stamp`)."""
    return any(p.startswith(".") or p == MAC_ZIP_DIR for p in os.fspath(rel).split(os.sep))


def folder_stamp(root: str | Path, files: Iterable[str | Path] | None = None) -> str:
    """`geodino.io.content_stamp` of a dataset folder (total size, newest mtime, count), from its shared listing:
    the files are stat'ed on every call, so an image rewritten in place under its old name still changes it.
    `files`: the stamp of these files only (the images a dataset reads, its listing keyed apart), without the
    folder's own mtime: a `.DS_Store` (or `._photo.jpg`, `Thumbs.db`) rewritten beside them, which moves the
    folder's mtime, is no new dataset and its features are not extracted again.

    Without `files` (the torchgeo adapters) every file under the root is stamped, as their file lists name the
    images, not the label masks, split lists or annotations the dataset also reads; but not `desktop_litter` (a
    `.DS_Store`, `._x`, `__MACOSX/` a Mac writes into the root made every feature be extracted again) nor the
    root's own mtime (which a new `.DS_Store` moves): the names of the files kept are hashed instead, so a file
    renamed or moved (its size and mtime kept) still changes the stamp, and their newest ctime, so a file replaced
    by one of its size and an older mtime (`cp -p`, `mv` of an older copy) does too."""
    if files is not None:
        return files_stamp(0, map(str, files))
    if not os.path.isdir(root):
        return content_stamp(root)
    base = os.path.realpath(root)
    kept = [rel for rel in list_folder(base) if not desktop_litter(rel)]
    names = hashlib.sha256("\n".join(kept).encode()).hexdigest()[:16]
    return f"{files_stamp(0, (os.path.join(base, rel) for rel in kept), changed=True)}|{names}"


def warn_empty_class_folders(folder: str | Path, classes: Collection[str], extensions: Collection[str]) -> None:
    """One warning naming the sub-folders of a class-per-folder `folder` that hold no image file (of `extensions`):
    they are no class of the dataset, so a probe silently had one class fewer than the folders the user made."""
    key = os.path.realpath(folder)
    subs = sorted(os.path.basename(p) for p, _ in _listing(key).folders if os.path.dirname(p) == key)
    subs = [name for name in subs if not desktop_litter(name)]  # from the shared listing: no walk of its own
    empty = [name for name in subs if name not in classes]
    if not empty or not classes:  # no class at all is an error of its own
        return
    names = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
    one = len(empty) == 1
    message = (
        f"class folder{'' if one else 's'} {names} in {folder} hold{'s' if one else ''} no image file "
        f"({', '.join(sorted(extensions))}): left out, the dataset has {len(classes)} classes "
        f"({', '.join(sorted(classes)[:10])}{', ...' if len(classes) > 10 else ''}); add images or remove the "
        f"folder{'' if one else 's'}"
    )
    if message not in _WARNED:  # once, not for each split the suite's check and the task build
        _WARNED.add(message)
        import warnings

        warnings.warn(message, stacklevel=3)


_WARNED: set[str] = set()
