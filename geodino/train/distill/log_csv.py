"""A distillation run's log.csv: one row per step, appended as the run goes and cut back to the resumed step, so a
resumed run's log has one row per step (the students' curves are drawn from it)."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["append_row", "drop_rows_from"]


def drop_rows_from(path: Path, step: int) -> None:
    """Keep only the log rows before `step` (atomically), so that a resumed run's log has one row per step."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if r.get("step") and float(r["step"]) < step]
    if len(kept) == len(rows):
        return
    from geodino.io import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        if kept:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(kept)


def append_row(path: Path, row: dict[str, float]) -> None:
    """Append one row to the run's log.csv (header on the first row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)
