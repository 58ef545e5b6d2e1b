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
    assert float(teacher_entropy(p)) == pytest.approx(math.log(2) / 2, rel=1e-6)
    assert float(usage_entropy(p)) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), rel=1e-6)
    s = torch.log(torch.tensor([[0.25, 0.25, 0.25, 0.25]])) * 0.1  # softmax(s/0.1) is uniform
    assert float(student_teacher_kl(s, p[:1])) == pytest.approx(math.log(2), rel=1e-5)  # KL([.5,.5,0,0] || uniform)
    same = torch.ones(5, 3)
    assert float(feature_std(same)) == pytest.approx(0.0, abs=1e-7)
    spread = torch.eye(4)
    assert float(feature_std(spread)) == pytest.approx(0.5, rel=1e-6)  # std of [1,0,0,0] columns (unbiased) = 0.5
    cls = torch.tensor([[1.0, 0.0]])
    patches = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert float(cls_patch_cosine(cls, patches)) == pytest.approx(0.5)


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


def test_plateau_statistics_by_hand() -> None:
    from geodino.models.heads import DINOHead
    from geodino.train.monitors import image_spread, layerscale_gamma, logit_std, prototype_norm

    same = torch.tensor([[1.0, -1.0, 2.0]]).repeat(4, 1)
    assert float(image_spread(same)) == pytest.approx(0.0, abs=1e-7)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # std across images: [sqrt(2), 0]; across dims: sqrt(0.5) each
    assert float(image_spread(x)) == pytest.approx((math.sqrt(2) / 2) / math.sqrt(0.5), rel=1e-6)
    logits = torch.tensor([[0.0, 2.0], [1.0, 1.0]])  # row stds sqrt(2) and 0
    assert float(logit_std(logits)) == pytest.approx(math.sqrt(2) / 2, rel=1e-6)
    head = DINOHead(4, 3, hidden_dim=4, bottleneck_dim=2)
    with torch.no_grad():
        head.last_layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]]))
    assert float(prototype_norm(head)) == pytest.approx((5 + 1 + 2) / 3, rel=1e-6)
    unit = DINOHead(4, 3, hidden_dim=4, bottleneck_dim=2, last_layer="normalized")
    assert float(prototype_norm(unit)) == pytest.approx(1.0, rel=1e-6)

    from geodino.models import build_model

    vit = build_model("vit_tiny", patch_size=8, depth=2, layerscale_init=1e-5)
    assert float(layerscale_gamma(vit)) == pytest.approx(1e-5, rel=1e-6)
    assert math.isnan(float(layerscale_gamma(build_model("vit_tiny", patch_size=8, depth=2, layerscale_init=None))))


def test_official_init_gives_an_image_independent_teacher_cls() -> None:
    """The mechanism behind the ln K plateau, measured: at LayerScale 1e-5 the teacher CLS barely depends on the
    image and the DINO targets are uniform to float precision; at LayerScale 1 they are neither."""
    from geodino.train.ssl import SSLMetaArch
    from tests.train.ssl_fixtures import ssl_batch, tiny_cfg

    stats = {}
    for ls in (1e-5, 1.0):
        torch.manual_seed(0)
        arch = SSLMetaArch(tiny_cfg(f"student.overrides.layerscale_init={ls}"), total_iters=4, global_batch_size=4)
        _, logs = arch(ssl_batch(B=8), 0)
        stats[ls] = logs
    k = math.log(tiny_cfg().dino.head_n_prototypes)
    assert stats[1e-5]["monitor/teacher_cls_spread"] < 1e-3
    assert stats[1e-5]["monitor/teacher_entropy"] == pytest.approx(k, abs=1e-4)
    assert stats[1.0]["monitor/teacher_cls_spread"] > 0.1
    assert stats[1.0]["monitor/teacher_entropy"] < k - 1e-3
    for key in ("teacher_logit_std", "student_logit_std", "layerscale_gamma", "dino_prototype_norm"):
        assert f"monitor/{key}" in stats[1.0]
    assert stats[1.0]["monitor/layerscale_gamma"] == pytest.approx(1.0, rel=1e-6)


def test_curves_png_from_metrics_csv(tmp_path) -> None:
    """plot_run merges every metrics.csv of a run (a resumed run may write two) and draws ln K from the log."""
    from PIL import Image

    from geodino.train.curves import find_metrics, plot_run, read_metrics

    first = tmp_path / "logs" / "metrics.csv"
    first.parent.mkdir(parents=True)
    first.write_text(
        "step,dino_global_loss,ibot_loss,monitor/max_entropy,monitor/teacher_entropy\n"
        f"0,6.9,3.4,{math.log(64)},4.1\n1,6.5,3.3,,\n"
    )
    second = tmp_path / "logs" / "resumed_2" / "metrics.csv"
    second.parent.mkdir(parents=True)
    second.write_text("step,dino_global_loss,sched/lr\n1,6.4,0.001\n2,6.0,0.0009\n")
    import os

    os.utime(first, (1, 1))  # older
    assert find_metrics(tmp_path) == [first, second]
    m = read_metrics(find_metrics(tmp_path))
    assert m["dino_global_loss"] == {0: 6.9, 1: 6.4, 2: 6.0}  # the later file wins for step 1
    png = plot_run(tmp_path)
    assert png == tmp_path / "curves.png"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert plot_run(tmp_path / "nothing") is None
