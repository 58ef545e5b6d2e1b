"""Leaving a multi-process run (pretraining, distillation) without the interpreter's exit aborting it.

gloo's worker threads can abort an interpreter that exits with a process group alive (SIGABRT, "terminate called
without an active exception": exit -6 after all work is done, see the install notes). Every way out of a run with a
group, finished or refused at its start, destroys the group and leaves through `os._exit`, which skips atexit: the
run folder locks are released here first. One home for both paths (the CLI's success and error returns)."""

from __future__ import annotations

import os
import sys

__all__ = ["leave_process_group"]


def leave_process_group(code: int, *, finished: bool) -> int:
    """`code`, or leave this process now with it when a process group is up: after a finished run (`finished`: every
    rank gets here, so a barrier first lets the slowest rank finish its writes), or in one rank of a start every rank
    agreed to refuse (no barrier: ranks leave as they raise; a one-process group is kept, the caller goes on). Never
    imports torch for a command that did not."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not (dist.is_available() and dist.is_initialized()):
        return code
    if not finished and dist.get_world_size() < 2:
        return code
    try:
        if finished:
            dist.barrier()
        dist.destroy_process_group()
    except RuntimeError:  # a backend that fails to tear down (DistBackendError): leaving anyway
        pass
    finally:
        from geodino.run_lock import release_all_run_folders

        release_all_run_folders()  # os._exit skips atexit: the run folder's lock file would stay behind
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code  # pragma: no cover
