"""One line for a multi-process run whose other process stopped mid-run (killed, out of memory, its node lost).

The surviving ranks' next collective fails inside the backend: gloo raises a RuntimeError `[.../pair.cc:545] Read
error [ADDR]: Connection reset by peer. This is typically caused by ...`, NCCL a `DistBackendError`; under Lightning
that came out as a 100-line traceback on every surviving rank, for an error that is not theirs. The CLI says this
line instead (exit code 1) and leaves the group (`leave_group`). Matched by the backend's own words, and only while a
process group of several ranks is up, so no other RuntimeError is renamed."""

from __future__ import annotations

import re
import sys

__all__ = ["peer_lost_line"]

# the words gloo's TCP transport and NCCL's watchdog use for a peer that went away (torch 2.x sources)
PEER_WORDS = (
    "Connection closed by peer",
    "Connection reset by peer",
    "Broken pipe",
    "remote process exited",
    "NCCL communicator was aborted",
)


def peer_lost_line(exc: BaseException) -> str | None:
    """The line for `exc` (or one of its causes) when it is a collective that failed because another process of the
    run went away; None for anything else (it keeps its traceback)."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur)
        if isinstance(cur, RuntimeError) and any(word in text for word in PEER_WORDS):
            said = re.sub(r"^\[[^\]]*\.(?:cc|cpp):\d+\]\s*", "", text.splitlines()[0] if text else "")
            said = said.split(". This is typically", 1)[0].rstrip(". ")
            return (
                f"another process of the run stopped or lost its connection, so rank {dist.get_rank()} of "
                f"{dist.get_world_size()} stops too ({dist.get_backend()}: {said}); see the other processes' output "
                "for why; the same command resumes from the newest checkpoint"
            )
        cur = cur.__cause__ or cur.__context__
    return None
