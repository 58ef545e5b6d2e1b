"""Multi-label macro mAP and F1 count every class, as sklearn 1.9 (`average_precision_score`,
`f1_score(average="macro")`) and torchmetrics 1.9 (`MultilabelAveragePrecision`, `MultilabelF1Score`, macro) do:
a class with no positive in the split scores AP 0 and F1 0. Before, geodino left such classes out of both means
(mAP 1.0 and F1 0.833 below where the references give 0.667 and 0.556)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.eval.metrics import multilabel_metrics

# 4 samples, 3 classes; class 2 has no positive
Y = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
P = torch.tensor([[0.9, 0.2, 0.7], [0.3, 0.8, 0.1], [0.6, 0.4, 0.2], [0.2, 0.1, 0.3]])


@pytest.mark.parametrize("class2_predicted", [True, False])
def test_a_class_without_positives_counts_as_zero_in_the_macro_means(class2_predicted):
    p = P.clone()
    if not class2_predicted:
        p[:, 2] = 0.1  # never predicted positive: still F1 0 for sklearn's zero_division=0 and torchmetrics
    m = multilabel_metrics(p, Y, logits=False)
    # by hand: class 0 (pos 0.9, 0.6 above negs 0.3, 0.2) AP 1; class 1 (pos 0.8, 0.4 above 0.2, 0.1) AP 1; class 2: 0
    assert m["per_class_ap"] == pytest.approx([1.0, 1.0, 0.0])
    assert m["mAP"] == pytest.approx(2 / 3)
    # at 0.5: class 0 TP 2 -> F1 1; class 1 TP 1 (0.8), FN 1 (0.4) -> F1 2/3; class 2 -> 0
    assert m["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["classes_without_positives"] == [2]


def test_macro_means_equal_torchmetrics_and_sklearn():
    from sklearn.metrics import average_precision_score, f1_score
    from torchmetrics.classification import MultilabelAveragePrecision, MultilabelF1Score

    g = torch.Generator().manual_seed(0)
    y = (torch.rand(30, 6, generator=g) > 0.7).long()
    y[:, 4] = 0  # one class without positives
    p = torch.rand(30, 6, generator=g)
    m = multilabel_metrics(p, y, logits=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm_ap = MultilabelAveragePrecision(6, average="macro")(p, y).item()
        tm_f1 = MultilabelF1Score(6, average="macro", threshold=0.5)(p, y).item()
        sk_ap = average_precision_score(y.numpy(), p.numpy(), average="macro")
        sk_f1 = f1_score(y.numpy(), (p.numpy() >= 0.5).astype(int), average="macro", zero_division=0)
    assert m["mAP"] == pytest.approx(tm_ap, abs=1e-6) and m["mAP"] == pytest.approx(sk_ap, abs=1e-9)
    assert m["f1_macro"] == pytest.approx(tm_f1, abs=1e-6) and m["f1_macro"] == pytest.approx(sk_f1, abs=1e-9)
