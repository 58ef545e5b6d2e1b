"""metric_ignore_classes are left out of the loss as well as the scores by default (metric_ignore_mode pixels), as
DINOv3 (reduce_zero_label maps class 0 to 255, ignored by the loss) and TerraTorch (ignore_index in loss and
metric) do; a class not trained on is never predicted. Before, those classes were still trained on (and so
predicted), only left out of the scores. `train_on_ignored_classes: true` keeps training on them; unset, mean mode
(whose scores keep their pixels) trains on them as before."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from geodino.errors import ConfigError
from geodino.eval import segmentation
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_segmentation import make_folder


def test_pixels_of_a_left_out_class_give_no_gradient():
    from geodino.eval.segmentation_data import loss_target

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (2, 6, 6), generator=g)
    target[0, 0, :3] = 255
    logits = torch.randn(2, 3, 6, 6, generator=g)
    moved = logits.clone()
    zero = (target == 0)[:, None].expand_as(logits)
    moved[zero] += 5 * torch.randn(int(zero.sum()), generator=g)  # only class-0 pixels' logits change
    left_out = torch.tensor([0])
    t = loss_target(target, left_out, 255)
    assert int((t == 0).sum()) == 0 and int((t == 255).sum()) == int((target == 0).sum()) + 3
    assert torch.equal(F.cross_entropy(logits, t, ignore_index=255), F.cross_entropy(moved, t, ignore_index=255))
    x = logits.clone().requires_grad_(True)
    F.cross_entropy(x, t, ignore_index=255).backward()
    assert torch.all(x.grad[zero] == 0) and x.grad[~zero].abs().sum() > 0
    # trained on (no class left out): those logits move the loss
    assert not torch.equal(
        F.cross_entropy(logits, target, ignore_index=255), F.cross_entropy(moved, target, ignore_index=255)
    )


def run(tmp_path, monkeypatch, name, **keys):
    """A tiny run; returns (metrics, class ids seen by the loss, class ids predicted)."""
    img, msk = make_folder(tmp_path / name, n=5, size=32)
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, crop_size=16, epochs=1, min_steps=4,
        lr=1e-2, plots=0, metric_ignore_classes=[0], **keys,
    )  # fmt: skip
    seen_by_loss: set[int] = set()
    predicted: set[int] = set()
    ce = F.cross_entropy

    def recording_ce(logits, target, *a, **k):
        seen_by_loss.update(int(v) for v in target.unique() if int(v) != 255)
        return ce(logits, target, *a, **k)

    class RecordingMeter(segmentation.SegmentationMeter):
        def update(self, pred, target):
            predicted.update(int(v) for v in pred.unique())
            super().update(pred, target)

    monkeypatch.setattr(segmentation.F, "cross_entropy", recording_ce)
    monkeypatch.setattr(segmentation, "SegmentationMeter", RecordingMeter)
    out = run_segmentation(tiny_backbone(), cfg, tmp_path / name / "out")
    monkeypatch.undo()
    return out, seen_by_loss, predicted


def test_default_leaves_the_class_out_of_the_loss_and_the_map(tmp_path, monkeypatch, capsys):
    out, seen, predicted = run(tmp_path, monkeypatch, "a")
    assert seen == {1} and predicted == {1}
    assert "left out of the loss:" in capsys.readouterr().err
    saved = json.loads((tmp_path / "a" / "out" / "segmentation_metrics.json").read_text())
    assert saved["trained_on_ignored_classes"] is False
    head = torch.load(tmp_path / "a" / "out" / "segmentation_head.pt", weights_only=False)
    assert head["untrained_classes"] == [0]
    assert out["mIoU"] == pytest.approx(out["IoU/1"])


def test_train_on_ignored_classes_keeps_them(tmp_path, monkeypatch):
    _, seen, predicted = run(tmp_path, monkeypatch, "b", train_on_ignored_classes=True)
    assert seen == {0, 1} and 0 in predicted
    _, seen, predicted = run(tmp_path, monkeypatch, "c", metric_ignore_mode="mean")  # unset: mean mode trains
    assert seen == {0, 1} and 0 in predicted


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="train_on_ignored_classes"):
        SegmentationProbeConfig(
            train_images="x", train_masks="y", num_classes=2, train_on_ignored_classes="false"
        ).validate()
    img, msk = make_folder(tmp_path, n=3, size=16, classes=3)
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, ignore_index=1, metric_ignore_classes=[0],
        epochs=1, min_steps=1,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="no class of 2 to train on"):
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
