"""Collapse statistics, the collapse monitor and the NaN/Inf guard."""

from __future__ import annotations

import math

import pytest
import torch

from geodino.errors import TrainingError
from geodino.train.monitors import (
    CollapseMonitor,
    CollapseWarning,
    check_finite,
    cls_patch_cosine,
    feature_std,
    student_teacher_kl,
    teacher_entropy,
    usage_entropy,
)


def test_statistics_by_hand() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert teacher_entropy(p) == pytest.approx(math.log(2) / 2, rel=1e-6)
    assert usage_entropy(p) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), rel=1e-6)
    s = torch.log(torch.tensor([[0.25, 0.25, 0.25, 0.25]])) * 0.1  # softmax(s/0.1) is uniform
    assert student_teacher_kl(s, p[:1]) == pytest.approx(math.log(2), rel=1e-5)  # KL([.5,.5,0,0] || uniform)
    same = torch.ones(5, 3)
    assert feature_std(same) == pytest.approx(0.0, abs=1e-7)
    spread = torch.eye(4)
    assert feature_std(spread) == pytest.approx(0.5, rel=1e-6)  # std of [1,0,0,0] columns (unbiased) = 0.5
    cls = torch.tensor([[1.0, 0.0]])
    patches = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert cls_patch_cosine(cls, patches) == pytest.approx(0.5)


def test_monitor_flags_collapsed_teacher_after_patience() -> None:
    k = 64
    one_hot = torch.zeros(8, k)
    one_hot[:, 3] = 1.0
    stats = {
        "teacher_entropy": teacher_entropy(one_hot),
        "teacher_usage_entropy": usage_entropy(one_hot),
        "n_prototypes": k,
        "teacher_feature_std": feature_std(torch.ones(8, 16)),
        "feature_dim": 16,
    }
    m = CollapseMonitor(patience=2)
    assert m.update(stats, step=1) and not m.collapsed
    with pytest.warns(CollapseWarning, match="teacher looks collapsed at step 2: teacher outputs are one-hot"):
        m.update(stats, step=2)
    assert m.collapsed
    uniform = torch.full((8, k), 1.0 / k)
    why = m.reasons({"teacher_entropy": teacher_entropy(uniform), "n_prototypes": k})
    assert why == [f"teacher outputs are uniform (entropy {math.log(k):.3g} of max {math.log(k):.3g} nats)"]
    healthy = torch.softmax(torch.randn(32, k) * 3, -1)
    ok = {
        "teacher_entropy": teacher_entropy(healthy),
        "teacher_usage_entropy": usage_entropy(healthy),
        "n_prototypes": k,
        "teacher_feature_std": feature_std(torch.randn(32, 16)),
        "feature_dim": 16,
    }
    assert m.update(ok) == [] and not m.collapsed


def test_nan_guard_names_terms() -> None:
    check_finite(torch.tensor(1.0), {"a": 1.0})
    with pytest.raises(TrainingError, match=r"training loss is nan at step 7 \(non-finite: ibot_loss=nan\)"):
        check_finite(torch.tensor(float("nan")), {"dino_loss": torch.tensor(2.0), "ibot_loss": float("nan")}, 7)
    with pytest.raises(TrainingError, match="loss is inf"):
        check_finite(float("inf"))
