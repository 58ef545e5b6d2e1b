"""The work folder of a feature raster being written (`.NAME.partial/`): the plan record, the Zarr store and the
progress records that make a run resumable and shareable between processes.

Every record is written under a temporary name and renamed (`geodino.io.atomic_path`), so a kill never leaves a
half-written one; readers skip the temporary (dot) names.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from geodino.errors import InputError
from geodino.io import atomic_path

__all__ = [
    "DONE",
    "PLAN_FILE",
    "STORE",
    "done_blocks",
    "init_work_dir",
    "mark_done",
    "mark_rows",
    "partial_blocks",
    "valid_cells",
    "wait_for",
    "work_dir_for",
]

PLAN_FILE = "plan.json"
STORE = "store.zarr"
DONE = "done"


def work_dir_for(out: Path) -> Path:
    """The deterministic work folder of an output (shared by resumed runs and parallel ranks)."""
    return out.with_name(f".{out.name}.partial")


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _records(work: Path, suffix: str) -> list[Path]:
    d = work / DONE
    return [p for p in d.glob(f"*{suffix}") if not p.name.startswith(".")] if d.exists() else []


def init_work_dir(work: Path, prep: Any, *, join: bool) -> None:
    """Create (or check, when resuming/joining) the work folder: plan record, empty store, progress folder.

    `prep` is the `PreparedRun` of `geodino.embed.pipeline`."""
    from geodino.embed.writers import create_store

    plan_file = work / PLAN_FILE
    if not join and work.exists():
        raise InputError(f"partial output {work} exists; pass --resume to finish it or --overwrite to start again")
    ident = jsonable(prep.ident)
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        diff = sorted(k for k in set(old) | set(ident) if old.get(k) != ident.get(k))
        if diff:
            raise InputError(
                f"the partial output {work} was started with other settings ({', '.join(diff)}); "
                f"rerun with the same settings or pass --overwrite to start again"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    plan, info = prep.plan, prep.source.info
    create_store(
        work / STORE,
        height=plan.out_height,
        width=plan.out_width,
        transform=plan.out_transform,
        crs=info.crs,
        band_names=prep.band_names,
        dtype=prep.ident["dtype"],
        chunk=plan.chunk,
        metadata=prep.meta,
    )
    (work / DONE).mkdir(exist_ok=True)
    _write_text(plan_file, json.dumps(ident, indent=1))  # written last: its presence means the store is ready


def jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """`d` as it reads back from JSON (tuples become lists, other objects their text)."""
    return json.loads(json.dumps(d, default=str))


def done_blocks(work: Path) -> set[int]:
    """Indexes of the blocks recorded done."""
    return {int(p.stem) for p in _records(work, ".done")}


def mark_done(work: Path, index: int, n_valid: int | None = None) -> None:
    """Record block `index` as written (its file holds the block's count of valid cells)."""
    _write_text(work / DONE / f"{index}.done", "" if n_valid is None else str(int(n_valid)))


def mark_rows(work: Path, index: int, rows_done: int, n_valid: int) -> None:
    """Record that block `index` is written up to output row `rows_done` (exclusive), with `n_valid` valid cells
    so far: a resume restarts the block there instead of at its top (written after the data)."""
    _write_text(work / DONE / f"{index}.rows", f"{int(rows_done)} {int(n_valid)}")


def partial_blocks(work: Path) -> dict[int, tuple[int, int]]:
    """Blocks written part-way: index -> (first output row still to write, valid cells written so far)."""
    out: dict[int, tuple[int, int]] = {}
    for f in _records(work, ".rows"):
        try:
            rows, n_valid = (int(v) for v in f.read_text().split())
        except ValueError:  # unreadable record: redo the whole block
            continue
        out[int(f.stem)] = (rows, n_valid)
    return out


def valid_cells(work: Path) -> int | None:
    """Valid (not nodata) cells over all finished blocks; None when a block did not record its count."""
    total = 0
    for f in _records(work, ".done"):
        text = f.read_text().strip()
        if not text.isdigit():
            return None
        total += int(text)
    return total


def wait_for(path: Path, timeout: float = 600.0) -> None:
    """Wait until rank 0 has written `path` (the plan record)."""
    t0 = time.monotonic()
    while not path.exists():
        if time.monotonic() - t0 > timeout:
            raise InputError(f"rank waited {timeout:.0f}s for {path}; is rank 0 running with the same output?")
        time.sleep(0.2)
