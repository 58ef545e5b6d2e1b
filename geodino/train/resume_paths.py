"""Data paths that name the same files are not a changed config on resume.

A resumed run keeps its data (`data.*` is checked against the checkpoint's config), and the check compares the
config's strings: `paths: [scenes/]` against the saved `[scenes]`, or `~/scenes` against `/home/me/scenes`, refused
the resume of the same run over a spelling. `same_paths_as_saved` gives the check this run's config with each such
entry spelled as the checkpoint spells it; entries that name other files still differ. A moved folder is the same
data when the run folder's `data_paths.json` (`write_data_stamp`, written at every start but one whose paths are
spelled as the run folder's config.yaml spells them) records, for that entry, the listing of the files it names
(relative names and sizes) and the new path's listing is the same: a run whose old data path is gone can then be
resumed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["STAMP", "listing_digest", "same_paths_as_saved", "spelling", "write_data_stamp"]

STAMP = "data_paths.json"  # in the run folder: {"data": [[digest or null per paths entry] per source]}


def spelling(path: str) -> str:
    """`path` without the differences that cannot change what it names: `~`, `./`, repeated and trailing slashes
    (URLs and GDAL virtual paths only lose a trailing slash: `//` means something there). `..` stays: after a
    symbolic link it need not lead back where it came from."""
    if "://" in path or path.startswith("/vsi"):
        return path.rstrip("/") or path
    return str(PurePosixPath(os.path.expanduser(path)))


def listing_digest(path: str) -> str | None:
    """A digest of the files a local `paths` entry names: each file's name relative to the entry (a file: its own
    name) and its size, walked following links. None for a URL, a GDAL virtual path, a glob or a missing path."""
    if "://" in path or path.startswith("/vsi") or any(c in path for c in "*?["):
        return None
    root = Path(os.path.expanduser(path))
    if root.is_file():
        rows = [f"{root.name}\t{root.stat().st_size}"]
    elif root.is_dir():
        rows = sorted(
            f"{(Path(r) / n).relative_to(root).as_posix()}\t{(Path(r) / n).stat().st_size}"
            for r, _, fs in os.walk(root, followlinks=True)
            for n in fs
            if (Path(r) / n).is_file()
        )
    else:
        return None
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _sources(config: dict[str, Any], key: str) -> list[Any]:
    sources = (config.get(key) or {}).get("sources")
    return sources if isinstance(sources, list) else []


def _paths(config: dict[str, Any], key: str) -> list[Any]:
    """Each source's `paths` list as spelled (None where a source has none), as the stamp records them."""
    return [src.get("paths") if isinstance(src, dict) else None for src in _sources(config, key)]


def _stamp(config: dict[str, Any], key: str) -> list[list[str | None]]:
    return [[listing_digest(p) if isinstance(p, str) else None for p in paths or []] for paths in _paths(config, key)]


def _stamp_fits(out: str | Path, key: str, paths: list[Any]) -> bool:
    """Whether `out`/data_paths.json records a digest (or null) for each entry of these `paths`."""
    got = _recorded(out, key)
    return [len(d) if isinstance(d, list) else None for d in got] == [len(p or []) for p in paths]


def write_data_stamp(cfg: Any, out: str | Path, key: str = "data", *, unchanged_from: Any = None) -> bool:
    """Record in `out`/data_paths.json the listing digest of every `key.sources[i].paths` entry of `cfg` (a config
    or its dict), so that a resume can tell the same files under a moved path (`same_paths_as_saved`). Kept as it
    is, unlisted, when `unchanged_from` (the config of the start that wrote it: the run folder's config.yaml, read
    before this start rewrites it) spells every path exactly as `cfg` does: listing costs ~0.1 ms a file, minutes
    at every resume of a run over millions of files. Whether it was written."""
    from geodino.config import to_dict
    from geodino.io import atomic_path

    config = cfg if isinstance(cfg, dict) else to_dict(cfg)
    paths = _paths(config, key)
    if isinstance(unchanged_from, dict) and _paths(unchanged_from, key) == paths and _stamp_fits(out, key, paths):
        return False
    with atomic_path(Path(out) / STAMP) as tmp:
        tmp.write_text(json.dumps({key: _stamp(config, key)}))
    return True


def _recorded(out: str | Path | None, key: str) -> list[Any]:
    if out is None:
        return []
    try:
        got = json.loads((Path(out) / STAMP).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return []
    return got if isinstance(got, list) else []


def _same(was: str, now: str, digest: Any) -> bool:
    return spelling(was) == spelling(now) or (isinstance(digest, str) and listing_digest(now) == digest)


def same_paths_as_saved(
    saved: dict[str, Any] | None, config: Any, out: str | Path | None = None, key: str = "data"
) -> dict[str, Any]:
    """A copy of `config` (a run's config, or its dict) whose `key.sources[i].paths` entries take the saved config's
    spelling wherever both name the same path (`spelling`) or, with the run folder `out` given, the new path names
    the files its `data_paths.json` records for that entry; `config` itself is not changed."""
    if not isinstance(config, dict):
        from geodino.config import to_dict

        config = to_dict(config)
    recorded = _recorded(out, key)
    old = ((saved or {}).get(key) or {}).get("sources")
    new = (config.get(key) or {}).get("sources")
    if not isinstance(old, list) or not isinstance(new, list):
        return config
    mine = copy.deepcopy(config)
    for i, (was, src) in enumerate(zip(old, mine[key]["sources"])):
        if not isinstance(was, dict) or not isinstance(src, dict):
            continue
        a, b = was.get("paths"), src.get("paths")
        digests = recorded[i] if i < len(recorded) and isinstance(recorded[i], list) else []
        digests = digests if isinstance(a, list) and len(digests) == len(a) else [None] * len(a or [])
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            if all(isinstance(x, str) and isinstance(y, str) and _same(x, y, d) for x, y, d in zip(a, b, digests)):
                src["paths"] = list(a)
    return mine
