"""A rank process that `trainer.strategy=ddp_spawn` started: it holds a lock of its own in the run folder and ends
when its launching process is gone.

Under ddp_spawn the command's process holds the run folder's lock (`run_lock.lock_run_folder`) and starts every rank
as a new process. When that process was killed (SIGKILL, the OOM killer), the OS freed the folder's lock at once,
while its ranks went on: torch sends them a SIGINT when their parent dies, which geodino takes as a stop request
(finish the step, save it), so for seconds (a checkpoint's save: longer) a resume into the folder ran beside ranks
still writing it. Now each rank holds `run_lock.run_rank_lock` (which `lock_run_folder` refuses on), and a watcher
thread ends a rank that is still running `GRACE_S` seconds after its parent died (a rank stuck in a collective or in
handing its results to the dead parent kept the folder locked for ever otherwise)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

__all__ = ["GRACE_S", "guard_spawned_rank"]

GRACE_S = 60.0  # how long a rank whose parent died may still take to stop on its own (finish its step, save it)


def guard_spawned_rank(out: Path, rank: int, grace: float | None = None) -> bool:
    """In a process started by `multiprocessing` (a ddp_spawn rank): lock `out` for rank `rank` and watch the parent
    (`GRACE_S`, or `grace`, seconds after it is gone the process exits with code 1). Whether it did so (False in a
    process that no multiprocessing parent started, such as the command's own)."""
    import multiprocessing

    from geodino.run_lock import lock_run_rank

    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    lock_run_rank(out, rank)
    wait = GRACE_S if grace is None else grace
    threading.Thread(target=_watch, args=(parent, rank, wait), name="geodino-parent-watch", daemon=True).start()
    return True


def _watch(parent: object, rank: int, grace: float) -> None:
    """Wait for `parent` (multiprocessing's handle of it) to end, then give this process `grace` seconds to stop."""
    parent.join()  # type: ignore[attr-defined]  # returns once the parent's sentinel closes: it exited or was killed
    threading.Event().wait(grace)
    print(
        f"geodino: rank {rank}: the process that started it (pid {getattr(parent, 'pid', '?')}) is gone and the rank "
        f"did not stop within {grace:g} s; it exits now (the same command resumes from the newest checkpoint)",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)
