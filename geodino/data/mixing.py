"""Several sources with weights, mixed as homogeneous batches (a whole batch from one source).

DINOv3 mixes its curated and uncurated data per batch (a batch is all ImageNet-like on ~10% of steps); here
the source of step s is drawn from a generator seeded by (seed, s), so every rank and every DataLoader worker
agrees on it without communication, and a resumed run draws the same sources again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geodino.errors import ConfigError

__all__ = ["SourceMixer"]

_MIX_STREAM = 0x6D6978


class SourceMixer:
    """Pick one source per step with probabilities proportional to `weights`."""

    def __init__(self, names: Sequence[str], weights: Sequence[float], seed: int) -> None:
        if len(names) != len(weights) or not names:
            raise ConfigError("data.sources must list at least one source, each with a weight")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"source weights must be >= 0 and not all 0, got {list(weights)}")
        self.names = list(names)
        self.probs = w / w.sum()
        self._cum = np.cumsum(self.probs)
        self.seed = int(seed)
        self._prefix: tuple[int, tuple[int, ...]] = (0, (0,) * len(self.names))

    def source_for_step(self, step: int) -> int:
        """Index of the source that fills the batch of `step` (pure function of (seed, step))."""
        if len(self.names) == 1:
            return 0
        u = np.random.default_rng([self.seed, int(step), _MIX_STREAM]).random()
        return min(int(np.searchsorted(self._cum, u, side="right")), len(self.names) - 1)

    def steps_before(self, step: int) -> list[int]:
        """How many of steps [0, `step`) each source fills: the count of a source's earlier batches, which numbers
        its samples (so a source visits its own items in order, whatever the other sources' share). A pure
        function of (seed, step); the last answer is cached, so asking for increasing steps costs only the steps
        in between (a run resumed at step s draws s sources once, ~40 us each)."""
        if len(self.names) == 1:
            return [int(step)]
        start, counts = self._prefix if self._prefix[0] <= step else (0, (0,) * len(self.names))
        out = list(counts)
        for s in range(start, int(step)):
            out[self.source_for_step(s)] += 1
        self._prefix = (int(step), tuple(out))
        return out

    def counts(self, start: int, stop: int) -> dict[str, int]:
        """How many of steps [start, stop) each source fills (for logs and tests)."""
        out = dict.fromkeys(self.names, 0)
        for s in range(start, stop):
            out[self.names[self.source_for_step(s)]] += 1
        return out
