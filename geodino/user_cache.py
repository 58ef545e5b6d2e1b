"""Where geodino keeps what it caches for a user across runs and folders (the weights files' digests,
`geodino.backbones.weights_digest`; features computed from Python without a `cache_dir`, `geodino.eval.features`).

`$GEODINO_CACHE_DIR`, else `$XDG_CACHE_HOME/geodino` (the XDG spec: a relative value is ignored), else
`~/.cache/geodino`; each cache is a subfolder of it. One variable moves them all (a batch job's node-local disk, a
test run's temporary folder). A relative `$GEODINO_CACHE_DIR` is refused (ConfigError naming it): taken against the
working folder, two jobs started in different folders (or one that changes folder) would keep separate caches
without a word, and resolving it once per process does not change that; `~` is expanded.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "switched_cache_dir", "user_cache_dir"]

CACHE_DIR_ENV = "GEODINO_CACHE_DIR"


def user_cache_dir(sub: str) -> Path:
    """The folder of the cache `sub` (not created here). A RuntimeError when no folder can be named: none of the
    variables is set and the user has no home (no HOME and no passwd entry); a ConfigError when
    `$GEODINO_CACHE_DIR` is a relative path."""
    root = os.environ.get(CACHE_DIR_ENV, "").strip()
    if root:
        folder = Path(root).expanduser()
        if not folder.is_absolute():
            from geodino.errors import ConfigError

            raise ConfigError(
                f"{CACHE_DIR_ENV}={root!r} is a relative path (each working folder would get its own cache); "
                f"set an absolute path, e.g. {CACHE_DIR_ENV}=$PWD/{root}"
            )
        return folder / sub
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "geodino" / sub
    return Path.home() / ".cache" / "geodino" / sub


_OFF_WORDS = ("0", "false", "no", "off")
_ON_WORDS = ("", "1", "true", "yes", "on", "auto")


def switched_cache_dir(switch_env: str, sub: str) -> Path | None:
    """`user_cache_dir(sub)` for a cache that the variable `switch_env` turns on (unset, 1, true, yes, on, auto) or
    off (0, false, no, off): None when off or when no folder can be named (no home: such a cache is a saving, never
    a reason to fail). Any other value is a ConfigError naming the variable and its value."""
    switch = os.environ.get(switch_env, "").strip().lower()
    if switch in _OFF_WORDS:
        return None
    if switch not in _ON_WORDS:
        from geodino.errors import ConfigError

        raise ConfigError(f"{switch_env}={switch!r} must be on or off (0, false, no); unset: on")
    try:
        return user_cache_dir(sub)
    except RuntimeError:  # no HOME and no passwd entry
        return None
