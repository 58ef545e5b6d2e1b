"""One rule for how the n-th skipped file of a run is said (pretraining's corrupt images, `embed images`'
unreadable files): the first NAMED by name, then a count at the next and at every power of ten."""

from __future__ import annotations

from geodino.data.images import NAMED, skip_said


def test_named_then_counted_at_the_next_and_at_powers_of_ten() -> None:
    said = {n: skip_said(n) for n in range(1, 10_001)}
    assert all(said[n] == "name" for n in range(1, NAMED + 1))
    counted = [n for n, s in said.items() if s == "count"]
    assert counted == [NAMED + 1, 100, 1_000, 10_000]
