"""Where geodino keeps what it caches for a user across runs and folders (the weights files' digests,
`geodino.backbones.weights_digest`; features computed from Python without a `cache_dir`, `geodino.eval.features`).

`$GEODINO_CACHE_DIR`, else `$XDG_CACHE_HOME/geodino` (the XDG spec: a relative value is ignored), else
`~/.cache/geodino`; each cache is a subfolder of it. One variable moves them all (a batch job's node-local disk, a
test run's temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "user_cache_dir"]

CACHE_DIR_ENV = "GEODINO_CACHE_DIR"


def user_cache_dir(sub: str) -> Path:
    """The folder of the cache `sub` (not created here). A RuntimeError when no folder can be named: none of the
    variables is set and the user has no home (no HOME and no passwd entry)."""
    root = os.environ.get(CACHE_DIR_ENV, "").strip()
    if root:
        return Path(root).expanduser() / sub
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "geodino" / sub
    return Path.home() / ".cache" / "geodino" / sub
