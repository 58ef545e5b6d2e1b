"""How far an `embed classify` map can be trusted: the scores of predictions against labels (accuracy, balanced
accuracy, per-class F1, confusion matrix) and their one-line headline, and what may mislead a reader of them, each a
`UserWarning` or a refusal: imbalanced labels, a test layer with none of the model's classes, test cells on or next
to training cells."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.classify_classes import natural_order
from geodino.errors import InputError

__all__ = ["IMBALANCE", "headline", "imbalance_warning", "scores"]


def scores(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class F1 and the confusion matrix (rows: true, columns: predicted)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = classes + natural_order(set(map(str, y_true)) - set(classes))  # test classes the model never saw
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    # balanced accuracy = mean recall over the classes in y_true, from the confusion matrix over every label:
    # sklearn's balanced_accuracy_score builds its own without `labels` and warns on a one-class test layer
    recall = np.diag(cm)[support > 0] / support[support > 0]
    # F1 is undefined for a class neither in y_true nor predicted (a model class the test layer lacks): null, and
    # left out of the macro mean, where sklearn's zero_division=0 made it a 0 (a perfect map scored 2/3 on 2 of 3)
    scored = (support > 0) | (cm.sum(axis=0) > 0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(recall.mean()),
        "f1": {c: float(v) if ok else None for c, v, ok in zip(labels, f1, scored, strict=True)},
        "macro_f1": float(np.mean(f1[scored])),
        "confusion": {"labels": labels, "matrix": cm.tolist()},
    }


def headline(s: dict[str, Any]) -> str:
    """The scores of `scores` for a line that says "... accuracy: " before them, balanced accuracy and macro F1
    first: plain accuracy on imbalanced labels mostly scores the largest class (1417 tree cells against 40 ground
    ones: 90.7 % plain, 62 % balanced)."""
    return f"balanced {s['balanced_accuracy']:.1%}, macro F1 {s['macro_f1']:.2f}, plain {s['accuracy']:.1%}"


IMBALANCE = 0.1
"""A smallest class with fewer than this share of the largest class's labelled cells is warned about."""


def imbalance_warning(counts: dict[str, dict[str, int]], labels: Any) -> str | None:
    """One line (a warning's message, without the CLI's "geodino: warning: ") when the smallest class has fewer
    than `IMBALANCE` of the largest class's cells (`counts`: class -> {"cells": n, ...}), else None: its plain
    accuracy says little, balanced accuracy and macro F1 do."""
    cells = {c: v["cells"] for c, v in counts.items()}
    small, large = min(cells, key=cells.__getitem__), max(cells, key=cells.__getitem__)
    if cells[small] >= IMBALANCE * cells[large]:
        return None
    return (
        f"imbalanced labels in {labels}: class {small!r} has {cells[small]} labelled cells, "
        f"{cells[small] / cells[large]:.1%} of class {large!r} ({cells[large]}); plain accuracy mostly scores "
        f"{large!r}: read balanced accuracy and macro F1, or label more {small!r}"
    )


def _check_test_classes(found: set[str], classes: list[str], test: str | Path, column: Any) -> None:
    """Refuse a test layer none of whose classes the model knows (another column, other codes): every cell would
    count as an error and the scores read 0 %, as if the map were wrong."""
    if found & set(classes):
        return
    few = natural_order(found)
    shown = ", ".join(few[:5]) + (", ..." if len(few) > 5 else "")
    raise InputError(
        f"test labels in {test}: none of their classes in column {column!r} ({shown}) is a class of the model "
        f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}); pass the --column of the test file that "
        "holds the model's classes (column= in Python)"
    )


def _test_near_training(
    metrics: dict[str, Any],
    test_cells: np.ndarray,
    train_cells: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    classes: list[str],
    gap: int,
    test: str | Path,
    labels: str | Path | None,
) -> None:
    """Flag test cells on, or within `gap` cells of, a training cell (the CV's own rule for "not independent"):
    a test layer that repeats the training labels scored 100 % as if independent. Their count goes into the
    metrics (`test.near_training`), the scores of the other cells into `test.independent`, and a warning."""
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(train_cells).query(test_cells, p=np.inf, distance_upper_bound=gap + 0.5)
    near = np.isfinite(dist)
    metrics["test"]["near_training"] = int(near.sum())
    if not near.any():
        return
    within = "on" if gap == 0 else f"on or within {gap} cell(s) of"
    if near.all():
        warnings.warn(
            f"all {len(near)} test cells from {test} lie {within} training cells from {labels}; "
            "the test scores are not independent: draw test labels away from the training labels",
            stacklevel=2,
        )
        return
    metrics["test"]["independent"] = scores(y[~near], pred[~near], classes)
    warnings.warn(
        f"{int(near.sum())} of {len(near)} test cells from {test} lie {within} training cells "
        f"from {labels}; the metrics' test.independent scores the other {int((~near).sum())}",
        stacklevel=2,
    )
