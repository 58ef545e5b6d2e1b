"""curves.png: the step axis has whole-number ticks. A run that logged one step (or two close ones) drew ticks at
2.85, 2.9 ... 3.15 (matplotlib's AutoLocator on a +-5 % view around the point)."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from matplotlib.figure import Figure


@pytest.fixture
def step_ticks(monkeypatch) -> list[list[list[float]]]:
    """Per saved figure, per axis: the x ticks inside the view limits, read as the figure is saved."""
    seen: list[list[list[float]]] = []
    original = Figure.savefig

    def record(fig: Figure, *args: Any, **kwargs: Any) -> Any:
        per_axis = []
        for ax in fig.axes:
            lo, hi = sorted(ax.get_xlim())
            per_axis.append([float(t) for t in ax.get_xticks() if lo <= t <= hi])
        seen.append(per_axis)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen


@pytest.mark.parametrize("steps", [[3], [0], [3, 4], [0, 10, 20]])
def test_pretrain_curves_step_ticks_are_whole_numbers(step_ticks, tmp_path, steps) -> None:
    from geodino.train.curves import plot_curves

    metrics = {"dino_global_loss": {s: 8.0 - s / 100 for s in steps}, "sched/lr": {s: 1e-4 for s in steps}}
    plot_curves(metrics, tmp_path / "curves.png", n_prototypes=16)
    for ticks in step_ticks[-1]:
        assert ticks and all(t == int(t) for t in ticks), ticks
    if steps == [3]:
        assert step_ticks[-1][-1] == [3.0]


def test_distill_curves_step_ticks_are_whole_numbers(step_ticks, tmp_path) -> None:
    from geodino.train.curves import plot_distill_log

    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "vits/dino_loss", "loss", "lr"])
        w.writerow([7, 8.1, 8.1, 1e-4])
    assert plot_distill_log(log) == tmp_path / "curves.png"
    for ticks in step_ticks[-1]:
        assert ticks == [7.0], ticks
