"""single_label_metrics' macro-F1 is sklearn's macro F1 (classes in the targets or the predictions).

scikit-learn is a core dependency of geodino (pyproject `dependencies`), so it is the reference here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from geodino.eval.metrics import single_label_metrics


def test_a_class_predicted_but_absent_from_the_targets_scores_f1_zero():
    """Targets [0, 0, 1, 1], predictions [0, 2, 1, 1]: class 2 is predicted once but never true. F1 per class:
    0: 2/3, 1: 1, 2: 0 -> macro 5/9 (sklearn); dropping class 2 gave 5/6."""
    from sklearn.metrics import f1_score

    targets, pred = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 2, 1, 1])
    m = single_label_metrics(F.one_hot(pred, 4).float(), targets, 4)  # class 3: neither true nor predicted
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert m["macro_f1"] == pytest.approx(f1_score(targets.numpy(), pred.numpy(), average="macro"))


def test_macro_f1_equals_sklearn_on_random_labels():
    from sklearn.metrics import f1_score

    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        targets = torch.randint(0, 4, (30,), generator=g)  # classes 0-3 true, 0-5 predicted
        scores = torch.rand(30, 6, generator=g)
        m = single_label_metrics(scores, targets, 6)
        assert m["macro_f1"] == pytest.approx(f1_score(targets.numpy(), scores.argmax(1).numpy(), average="macro"))
