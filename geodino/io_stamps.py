"""Strict JSON text and content stamps of inputs (split from `geodino.io`, which re-exports every name).

`content_stamp` keys caches (features, embeddings) on an input's size and newest mtime (a folder's content, a VRT's
source files), so changed inputs are recomputed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["RACY_NS", "changed_recently", "content_stamp", "files_stamp", "json_text", "vrt_sources"]

# A file or folder changed this recently may change again unseen within its timestamps' resolution, so a check keyed
# on its stat (size, times, inode) does not trust it yet, as git does not trust an index entry as new as the index:
# the feature cache's folder listings, the file records of resumes and the probe cache (`geodino.embed.file_stamps`),
# the weights digest cache (`geodino.backbones.weights_digest`). "Recently" is by this machine's clock, but the times
# are stamped by the file system's (an NFS or SMB server's): one 10 s behind makes a file changed 1 s ago look 11 s
# old, past the resolution alone, and a rewrite in the same tick went unseen. So the window is the resolution
# (TICK_NS: 2 s on FAT, 1 s on ext3, HFS+ and some NAS) plus the skew allowed between the two clocks (SKEW_NS:
# 300 s, Kerberos' default limit, past which Kerberized NFS and SMB refuse to work). The server's clock is not probed
# (a file created in the data folder): that needs write access to data folders and moves the folder's mtime, which
# the feature cache's key reads. A change within the window costs a later read (a file's head, a weights hash),
# never a wrong answer; a change in the future (the server's clock ahead) stays within it until this clock catches up.
TICK_NS = 2_000_000_000
SKEW_NS = 300_000_000_000
RACY_NS = TICK_NS + SKEW_NS


def changed_recently(ctimes_ns: Iterable[int], now_ns: int) -> bool:
    """Whether any of a file's change times (its ctime, a sidecar's) is within `RACY_NS` of `now_ns` (this machine's
    time_ns() before the stat) or after it: nothing keyed on its stat is kept then. The ctime, never the mtime: every
    write sets the ctime, while `cp -p`, `touch -d` or an extracted archive set the mtime to any time (dated back it
    hid a rewrite; in the future it kept a file from ever being cached). Read by the header cache (and through its
    `stamp_is_young` the image-folder rule memo), the raster index's memo and the probes' folder listings (the
    weights digest cache and `embed.file_stamps` apply the same ctime rule)."""
    return any(now_ns - c < RACY_NS for c in ctimes_ns)


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


def files_stamp(newest: int, files: Iterable[str], *, changed: bool = False) -> str:
    """'total size|newest mtime|count' of `files`, stat'ed now (files gone meanwhile are skipped), starting from a
    folder's own mtime `newest`: the stamp of a folder's content (`content_stamp`, probe dataset folders).
    `changed`: and '|newest ctime', which tells a file replaced by one of the same size and an older mtime (`cp -p`,
    `mv` of an older copy) where no folder's mtime is in the stamp to tell it."""
    size, count, ctime = 0, 0, 0
    for p in files:
        try:
            f = os.stat(p)
        except OSError:
            continue
        size, newest, count, ctime = size + f.st_size, max(newest, f.st_mtime_ns), count + 1, max(ctime, f.st_ctime_ns)
    return f"{size}|{newest}|{count}" + (f"|{ctime}" if changed else "")
