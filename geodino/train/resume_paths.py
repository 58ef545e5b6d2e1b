"""Data paths that name the same files are not a changed config on resume.

A resumed run keeps its data (`data.*` is checked against the checkpoint's config), and the check compares the
config's strings: `paths: [scenes/]` against the saved `[scenes]`, or `~/scenes` against `/home/me/scenes`, refused
the resume of the same run over a spelling. `same_paths_as_saved` gives the check this run's config with each such
entry spelled as the checkpoint spells it; entries that name other files (a moved or another folder) still differ.
"""

from __future__ import annotations

import copy
import os
from pathlib import PurePosixPath
from typing import Any

__all__ = ["same_paths_as_saved", "spelling"]


def spelling(path: str) -> str:
    """`path` without the differences that cannot change what it names: `~`, `./`, repeated and trailing slashes
    (URLs and GDAL virtual paths only lose a trailing slash: `//` means something there). `..` stays: after a
    symbolic link it need not lead back where it came from."""
    if "://" in path or path.startswith("/vsi"):
        return path.rstrip("/") or path
    return str(PurePosixPath(os.path.expanduser(path)))


def same_paths_as_saved(saved: dict[str, Any] | None, config: dict[str, Any], key: str = "data") -> dict[str, Any]:
    """A copy of `config` (a run's config as a dict) whose `key.sources[i].paths` entries take the saved config's
    spelling wherever both name the same path (`spelling`); `config` itself is not changed."""
    old = ((saved or {}).get(key) or {}).get("sources")
    new = (config.get(key) or {}).get("sources")
    if not isinstance(old, list) or not isinstance(new, list):
        return config
    out = copy.deepcopy(config)
    for was, src in zip(old, out[key]["sources"]):
        if not isinstance(was, dict) or not isinstance(src, dict):
            continue
        a, b = was.get("paths"), src.get("paths")
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            if all(isinstance(x, str) and isinstance(y, str) and spelling(x) == spelling(y) for x, y in zip(a, b)):
                src["paths"] = list(a)
    return out
