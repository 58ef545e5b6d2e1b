"""The sweep's writer thread (`Sweeper._writer`, assigned from here): it stores the finished rows (`ChunkRowWriter`,
a chunk row at a time) and writes each progress record once the rows it claims are in the store, and it turns a
writer failure that comes from the work folder (removed, or a store that no longer reads back) into the user's one
line (`Sweeper._store_error`). Tests patch `ChunkRowWriter`, `mark_rows`, `mark_done` and `ROWS_FLUSH_S` here, where
the writer looks them up.
"""

from __future__ import annotations

import queue
import time
from typing import TYPE_CHECKING

from geodino.embed.workdir import DONE, PLAN_FILE, STORE, WorkDirGone, damaged, mark_done, mark_rows
from geodino.embed.writers import ChunkRowWriter
from geodino.errors import GeoDinoError

if TYPE_CHECKING:
    from geodino.embed.sweep import Sweeper

__all__ = ["ROWS_FLUSH_S"]

# Rows the writer holds (the unfinished chunk row, `ChunkRowWriter`) are stored at the next progress record once they
# are this old, so a hard kill (SIGKILL, power) loses at most about this much of the sweep or one tile row, whichever
# is more; a faster sweep completes chunk rows first and stores each chunk once. An error or an interrupt loses
# nothing more: the writer stores what it holds before the run ends.
ROWS_FLUSH_S = 10.0


def _writer(sweeper: Sweeper, in_q: queue.Queue, errors: list[BaseException]) -> None:
    """Store rows (`ChunkRowWriter`: a chunk row at a time) and record progress once the rows a record claims are
    in the store; rows held longer than `ROWS_FLUSH_S` are stored at the next record, and all at the end (also
    of a run stopped by an error or an interrupt, whose queued rows are still written)."""
    writer: ChunkRowWriter | None = None
    pending: list[tuple[str, int, int, int, int]] = []  # (kind, block, n_valid, rows done, c0) not yet stored

    def record(job: tuple[str, int, int, int, int]) -> None:
        kind, index, n_valid, rows, _ = job
        if not (sweeper.work / PLAN_FILE).exists():  # never recreate records in a folder someone removed
            raise FileNotFoundError(sweeper.work / PLAN_FILE)
        if kind == "done":  # after every write of the block
            mark_done(sweeper.work, index, n_valid)
            (sweeper.work / DONE / f"{index}.rows").unlink(missing_ok=True)
        else:  # a block written up to a row: finer-grained resume
            mark_rows(sweeper.work, index, rows, n_valid)

    def stored(job: tuple[str, int, int, int, int]) -> bool:  # another column range: stored before it began
        return writer is None or job[4] != writer.c0 or job[3] <= writer.stored_to

    while True:
        job = in_q.get()
        if errors:
            if job is None:
                return
            continue
        try:
            held = writer is not None and writer.held
            if (job is not None or held) and not (sweeper.work / PLAN_FILE).exists():
                raise FileNotFoundError(sweeper.work / PLAN_FILE)  # never recreate a folder someone removed
            if job is None:
                if held and writer is not None:  # held implies a writer
                    writer.flush()
                for rec in pending:
                    record(rec)
                return
            kind, a, b = job
            if kind == "data":
                writer = writer or ChunkRowWriter(sweeper.work / STORE)
                writer.add(a[0], a[1], b)
            else:  # "done" / "rows": (block index, (n_valid, rows done, c0))
                pending.append((kind, a, *b))
                if writer is not None and not stored(pending[-1]):
                    if time.monotonic() - writer.held_since >= ROWS_FLUSH_S:
                        writer.flush()
            while pending and stored(pending[0]):
                record(pending.pop(0))
        except BaseException as exc:
            errors.append(sweeper._store_error(exc))
            if job is None:
                return


def _store_error(sweeper: Sweeper, exc: BaseException) -> BaseException:
    """A writer failure as the user's one line where it comes from the work folder: removed while this run
    wrote into it, or a chunk that no longer decodes (a disk error, a kill during a copy); other errors (a
    full disk, an interrupt) stay as they are."""
    work = sweeper.work
    if isinstance(exc, GeoDinoError) or not isinstance(exc, Exception):
        return exc
    if not (work / PLAN_FILE).exists() or not (work / STORE).exists():
        err: BaseException = WorkDirGone(
            f"the work folder {work} was removed while this run was writing into it (another run with "
            f"--overwrite, or a clean-up?); run it again"
        )
    elif isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        return exc
    else:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err = damaged(work, f"its store does not read back: {first}")
    err.__cause__ = exc
    return err
