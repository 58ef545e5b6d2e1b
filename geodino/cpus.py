"""The CPUs this process may use, and the most threads and processes a setting may ask for against them.

One count for every check: the process's CPU affinity (a SLURM step or a container pins fewer CPUs than the machine
has, and `os.cpu_count()` reports the machine's), else `os.cpu_count()`. Compute (torch threads, embed's worker
processes, each with a backbone) is held to it; data readers, which mostly wait on disks and the network (remote
COGs), may be several per CPU."""

from __future__ import annotations

import os

__all__ = ["READERS_PER_CPU", "most_readers", "usable_cpus"]

READERS_PER_CPU = 8  # reader processes per CPU before a count is refused (100000 hung starting them one by one)


def usable_cpus() -> int:
    """The CPUs this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call (macOS, Windows)
        return os.cpu_count() or 1


def most_readers() -> int:
    """The most data-reader processes a setting may ask for here."""
    return READERS_PER_CPU * usable_cpus()
