"""curves.png says each value as it is: a LayerScale |gamma| that moves in its fifth digit (0.99991 ... 0.99999)
drew ticks 0.0, 0.2 ... under a corner offset `+9.999e-1` (matplotlib's ScalarFormatter offset)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure


def test_no_value_axis_of_the_pretraining_curves_has_an_offset(tmp_path, monkeypatch) -> None:
    from geodino.train.curves import plot_curves

    seen: list[list[str]] = []
    original = Figure.savefig

    def record(fig: Figure, *args: Any, **kwargs: Any) -> Any:
        fig.canvas.draw()  # the formatters pick their offset when the ticks are drawn
        seen.append([ax.yaxis.get_major_formatter().get_offset() for ax in fig.axes])
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    steps = range(0, 100, 10)
    metrics = {
        "dino_global_loss": {s: 8.0 - s / 100 for s in steps},
        "monitor/layerscale_gamma": {s: 0.99991 + s * 1e-6 for s in steps},
    }
    plot_curves(metrics, tmp_path / "curves.png", n_prototypes=16)
    assert seen and seen[-1] == ["", ""], seen  # the gamma panel had "+9.999e-1"
