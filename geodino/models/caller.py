"""`user_stacklevel`: the `warnings.warn` stacklevel that names the caller's own code, not a line of geodino.

A fixed stacklevel is right for one call path only: `resolve_bands`' warning named the line of `load_model` (or of
`load_backbone`, `geodino_vit`) that called it, so Python's "file:line" pointed into geodino whatever the user wrote,
and the default filter showed it once for every user call site together. Pure Python (no torch)."""

from __future__ import annotations

import sys
from types import FrameType

# Frames of these packages are passed over: geodino itself, torch (nn.Module.__call__, no_grad wrappers between a
# user's `backbone(x)` and geodino's forward) and TerraTorch (its registry and factories call `geodino_vit`).
INTERNAL = ("geodino", "torch", "terratorch")


def user_stacklevel(internal: tuple[str, ...] = INTERNAL) -> int:
    """stacklevel for a `warnings.warn` in the function that calls this one: the first frame up the stack whose
    module is not in `internal` packages (the user's script, test or notebook cell; `__main__` for the CLI). 1 (the
    warning's own line) when every frame is internal."""
    frame: FrameType | None = sys._getframe(1)  # the function that warns: stacklevel 1
    level = 1
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name.split(".")[0] not in internal:
            return level
        frame = frame.f_back
        level += 1
    return 1
