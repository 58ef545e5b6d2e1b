"""A distillation run's log.csv: one row per step, appended as the run goes and cut back to the resumed step, so a
resumed run's log has one row per step (the students' curves are drawn from it)."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["append_row", "drop_rows_from", "merge_logs", "split_log"]


def drop_rows_from(path: Path, step: int) -> None:
    """Keep only the log rows before `step` (atomically), so that a resumed run's log has one row per step."""
    if not path.is_file():
        return
    text = path.read_text()
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    # a row cut short by a kill (no final newline) has fewer values (None) or, once the next row is appended onto
    # its line, more (key None): dropped, and the file rewritten so that the next row starts a line of its own
    kept = [r for r in rows if None not in r and None not in r.values()]
    kept = [r for r in kept if r.get("step") and float(r["step"]) < step]
    if len(kept) == len(rows) and (not text or text.endswith("\n")):
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


def _rows(path: Path, before: int) -> tuple[list[str], list[dict[str, str]]]:
    """A log's columns and its rows of steps before `before` (none when it cannot be read)."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if r.get("step") and float(r["step"]) < before]
            return list(reader.fieldnames or []), rows
    except (OSError, ValueError, csv.Error):
        return [], []


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    from geodino.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _own(column: str, names: list[str]) -> str | None:
    """The student a `<student>/...` column belongs to (None for the shared columns: step, loss, schedules)."""
    head = column.split("/", 1)[0]
    return head if "/" in column and head in names else None


def merge_logs(logs: dict[str, Path], dest: Path, before: int) -> None:
    """The co-located log.csv `dest` from the logs of students that trained on their own ranks (`logs`: student ->
    its log.csv), rows of steps before `before`, in the columns a co-located run writes (step, each student's loss
    terms, `loss` = the sum of the students' losses, each student's gradient norms, the schedules)."""
    read = {n: _rows(p, before) for n, p in logs.items()}
    names = list(logs)
    terms = [c for n in names for c in read[n][0] if _own(c, names) == n and "/grad_norm/" not in c]
    norms = [c for n in names for c in read[n][0] if _own(c, names) == n and "/grad_norm/" in c]
    shared = [c for c in dict.fromkeys(c for n in names for c in read[n][0]) if _own(c, names) is None]
    shared = [c for c in shared if c not in ("step", "loss")]
    by_step: dict[float, dict[str, str]] = {}
    losses: dict[float, list[float]] = {}
    for n in names:
        for r in read[n][1]:
            step = float(r["step"])
            row = by_step.setdefault(step, {"step": r["step"]})
            row.update({k: v for k, v in r.items() if k != "loss" and (k in shared or _own(k, names) == n)})
            if r.get("loss"):
                losses.setdefault(step, []).append(float(r["loss"]))
    for step, row in by_step.items():  # a step some student did not log keeps no total
        if len(losses.get(step, [])) == len(names):
            row["loss"] = str(sum(losses[step]))
    if by_step:
        _write(dest, ["step", *terms, "loss", *norms, *shared], [by_step[k] for k in sorted(by_step)])


def split_log(log: Path, name: str, names: list[str], dest: Path, before: int) -> None:
    """Student `name`'s log.csv `dest` (it trains on its own ranks now) from the co-located log `log` of students
    `names`, rows of steps before `before`, in the columns such a run writes (step, its loss terms, `loss` = its
    own loss, its gradient norms, the schedules)."""
    columns, rows = _rows(log, before)
    if not rows:
        return
    terms = [c for c in columns if _own(c, names) == name and "/grad_norm/" not in c]
    norms = [c for c in columns if _own(c, names) == name and "/grad_norm/" in c]
    shared = [c for c in columns if _own(c, names) is None and c not in ("step", "loss")]
    own_loss = f"{name}/loss"
    out = [{**r, "loss": r.get(own_loss, "")} for r in rows]
    _write(dest, ["step", *terms, "loss", *norms, *shared], out)
