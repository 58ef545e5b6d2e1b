"""curves.png of a run that logged one step (or a few) draws its points.

Before, each series was a marker-less line, and a line through one point draws nothing: `geodino demo --size tiny`
(one logged step) wrote a curves.png of empty axes. Series with few points now carry a marker at each point."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from matplotlib.figure import Figure


@pytest.fixture
def saved_lines(monkeypatch) -> list[list[dict[str, Any]]]:
    """The lines of every figure as it is saved (read before the figure is cleared)."""
    seen: list[list[dict[str, Any]]] = []
    original = Figure.savefig

    def record(fig: Figure, *args: Any, **kwargs: Any) -> Any:
        seen.append(
            [
                {
                    "label": ln.get_label(),
                    "marker": ln.get_marker(),
                    "n": len(ln.get_xdata()),
                    "ls": ln.get_linestyle(),
                    "y": float(ln.get_ydata()[0]),
                }
                for ax in fig.axes
                for ln in ax.get_lines()
            ]
        )
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen


def _data_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plotted series, not the dashed ln K reference lines."""
    return [ln for ln in lines if ln["ls"] != "--"]


def test_pretrain_curves_of_one_logged_step_draw_markers(saved_lines, tmp_path) -> None:
    from geodino.train.curves import plot_curves

    metrics = {
        "dino_global_loss": {0: 8.3},
        "ibot_loss": {0: 4.1},
        "koleo_loss": {0: 1.2},
        "sched/lr": {0: 1e-4},
    }
    out = plot_curves(metrics, tmp_path / "curves.png", n_prototypes=4096)
    assert out.stat().st_size > 0
    lines = _data_lines(saved_lines[-1])
    assert {ln["label"] for ln in lines} == {"dino_global", "ibot", "koleo", "lr"}
    for ln in lines:
        assert ln["n"] == 1
        assert ln["marker"] not in ("None", "", " ", None), ln


def test_distill_curves_of_one_logged_step_draw_markers(saved_lines, tmp_path) -> None:
    from geodino.train.curves import plot_distill_log

    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "vits/dino_loss", "vits/ibot_loss", "loss", "lr", "momentum", "teacher_temp"])
        w.writerow([0, 8.1, 4.0, 12.1, 0.0, 0.994, 0.07])
    assert plot_distill_log(log) == tmp_path / "curves.png"
    lines = _data_lines(saved_lines[-1])
    assert len(lines) == 6
    assert all(ln["n"] == 1 and ln["marker"] not in ("None", "", " ", None) for ln in lines), lines


def test_long_series_stay_plain_lines(saved_lines, tmp_path) -> None:
    """Markers only where they are needed: 100 logged steps are a line without dots."""
    from geodino.train.curves import plot_curves

    plot_curves({"dino_global_loss": {s: 8.0 - s / 100 for s in range(100)}}, tmp_path / "c.png", n_prototypes=16)
    (line,) = _data_lines(saved_lines[-1])
    assert line["n"] == 100 and line["marker"] in ("None", "", " ", None)


def test_distill_curves_draw_ln_k_on_each_students_losses(saved_lines, tmp_path) -> None:
    """As pretraining's curves do: a DINO loss at ln K means the student learned nothing (the line was missing)."""
    from geodino.train.curves import plot_distill_log

    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "a/dino_loss", "b/dino_loss", "loss", "lr"])
        for step in range(3):
            w.writerow([step, 6.9 - step, 6.8 - step, 13.0, 1e-4])
    plot_distill_log(log, n_prototypes=1024)
    refs = [ln for ln in saved_lines[-1] if ln["ls"] == "--"]
    assert [ln["label"] for ln in refs] == ["ln K", "ln K"]  # one per student panel, none on the schedules
    assert all(ln["y"] == pytest.approx(6.9315, abs=1e-4) for ln in refs)  # ln 1024
    plot_distill_log(log)
    assert [ln for ln in saved_lines[-1] if ln["ls"] == "--"] == []
