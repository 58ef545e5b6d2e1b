"""The web images that failed to decode in a training run, counted over its DataLoader workers.

Each image source keeps the items that failed in its own process (`_ImageSourceBase.bad`: replaced by another image
at every later read), and the workers are other processes, so the training process never saw them: the end of the
run could not say how many there were. `CorruptMarks` keeps a flag per image in shared memory, set by whichever
process meets a corrupt image first (a set-size compare per sample, a write only for a new one; no sync in the
steps), and read once at the end of the run; flags, not a count, so a file that several workers meet counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class CorruptMarks:
    """A shared flag per image of each source that replaces corrupt images (None for others, e.g. rasters)."""

    def __init__(self, sources: Sequence[Any], *, shared: bool = True) -> None:
        """`shared` False: no worker processes read the dataset, so the flags stay in this process's memory."""
        self._flags = [
            torch.zeros(len(s), dtype=torch.bool) if isinstance(getattr(s, "bad", None), set) else None for s in sources
        ]
        if shared:  # one byte per image (ImageNet-1k: 1.3 MB); bytes, not bits, so no two workers write one byte
            self._flags = [None if f is None else f.share_memory_() for f in self._flags]
        self._marked: list[set[int]] = [set() for _ in sources]  # the items this process has flagged

    def mark(self, src: int, source: Any) -> None:
        """Flag the items `source` (number `src`) found corrupt in this process since the last call."""
        flags, bad, marked = self._flags[src], getattr(source, "bad", None), self._marked[src]
        if flags is None or bad is None or len(bad) == len(marked):
            return
        new = bad - marked
        flags[sorted(new)] = True
        marked |= new

    def count(self) -> int:
        """How many distinct images failed to decode so far, in every process that reads the dataset."""
        return sum(int(f.sum()) for f in self._flags if f is not None)
