"""The lock of a probe output folder: one run at a time writes into it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def locked_probe_output(out_dir: str | Path) -> Iterator[None]:
    """Hold the lock of a probe output folder (`run_lock.locked_output`, the hidden `.NAME.geodino.lock` beside it)
    while the block writes into it; a no-op when this process holds it already (the CLI, then `run_suite`)."""
    from geodino.io import make_dirs
    from geodino.run_lock import locked_output

    out = Path(out_dir).expanduser()
    make_dirs(out.parent if str(out.parent) else Path("."))  # the lock file sits beside the output folder
    with locked_output(out, what="output folder"):
        yield
