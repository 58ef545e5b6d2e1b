"""The probes' report figures say what they show: the confusion matrix's colour bar names its quantity, and a class
with no test samples is marked as such instead of drawn like a class that was never predicted right."""

from __future__ import annotations

from geodino.eval import plots


def _captured(monkeypatch) -> list:
    seen: list = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, **kw: seen.append(fig))
    return seen


def test_confusion_marks_a_class_without_test_samples_and_labels_its_colour_bar(monkeypatch, tmp_path):
    seen = _captured(monkeypatch)
    cm = [[0, 0, 0], [1, 3, 0], [0, 1, 4]]  # class "bare" has no test chips (the demo's east half can lack one)
    plots.plot_confusion(cm, ["bare", "crop", "water"], tmp_path / "cm.png", "knn")
    ax, cbar = seen[0].axes
    marks = [t for t in ax.texts if t.get_text() == "no test samples"]
    assert len(marks) == 1 and abs(marks[0].get_position()[1] - 0) < 1e-9  # on row 0, the empty one
    assert "share" in cbar.get_ylabel()


def test_confusion_of_full_rows_has_no_empty_row_mark(monkeypatch, tmp_path):
    seen = _captured(monkeypatch)
    plots.plot_confusion([[2, 1], [0, 3]], ["a", "b"], tmp_path / "cm.png", "linear")
    assert not [t for t in seen[0].axes[0].texts if t.get_text() == "no test samples"]
