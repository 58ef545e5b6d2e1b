"""What the end of a training run says of its data ("; 2 corrupt images replaced"), kept for the CLI's done line.

Pretraining's `finish_run` and distillation's loop keep the note of the run folder they finished; the CLI, which has
only the run folder (pretraining) or the config (distillation), takes it when it prints "pretraining done" or
"distillation done"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_NOTES: dict[Path, str] = {}  # run folder -> its note, kept by the run's end, taken by `data_note`


def corrupt_note(loader: Any, world_size: int) -> str:
    """The note "; N corrupt images replaced" (distinct images of the training loader's dataset that failed to decode
    and were read as others, over its DataLoader workers: `data.corrupt_marks`, no sync in the steps), "" for none or
    no loader (a finished run's re-run). Several processes: this rank's own count, said as rank 0's (the one that
    prints; a file met on two ranks would count twice in a sum, and a union of the ranks' flags is a collective at
    the run's end)."""
    from geodino.errors import plural

    count = getattr(getattr(loader, "dataset", None), "corrupt_replaced", None)
    n = int(count()) if callable(count) else 0
    if n == 0:
        return ""
    return f"; {plural(n, 'corrupt image')} replaced" + (" on rank 0" if world_size > 1 else "")


def keep(out: Path, note: str) -> None:
    """Keep `note` for the run in folder `out` until the CLI's done line takes it."""
    _NOTES[Path(out)] = note


def data_note(out: Path) -> str:
    """The note the end of the run in `out` just kept in this process (taken: said once), else ""."""
    return _NOTES.pop(Path(out), "")
