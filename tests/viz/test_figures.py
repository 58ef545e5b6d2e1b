"""Report figures never touch pyplot's global state: a notebook keeps its backend and its inline figures."""

from __future__ import annotations

import subprocess
import sys


def test_report_plots_leave_the_callers_backend_and_pyplot_alone(tmp_path):
    """geodino switched matplotlib to Agg on its first plot, after which a notebook showed no figure at all; it
    now draws on stand-alone Figures (run in a fresh interpreter: another test may have imported pyplot)."""
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
from geodino.eval.plots import plot_confusion
from geodino.viz.figures import figures, save_figure
plot_confusion([[3, 1], [0, 4]], ["a", "b"], r"{tmp_path / "cm.png"}", "t")
fig, axes = figures().subplots(1, 2, figsize=(4, 2), squeeze=False)
axes[0, 1].imshow([[0, 1]], cmap=figures().get_cmap("tab20", 3))
save_figure(fig, r"{tmp_path / "two.png"}")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"]
    for name in ("cm.png", "two.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_figure_draws_the_figure_once(tmp_path, monkeypatch):
    """tight_layout left a place-holder layout engine on a figure with a colour bar, and savefig drew the whole
    figure once more (unrendered) for it before the real draw: a third of an attention panel's time."""
    from matplotlib.figure import Figure

    from geodino.viz.figures import figures, save_figure

    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(1) or original(self, renderer))
    fig, axes = figures().subplots(1, 2, figsize=(4, 2), squeeze=False)
    image = axes[0, 0].imshow([[0.0, 1.0]])
    fig.colorbar(image, ax=axes[0, 0], orientation="horizontal")
    save_figure(fig, tmp_path / "bar.png")
    assert len(draws) == 1 and (tmp_path / "bar.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
