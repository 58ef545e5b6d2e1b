"""Dense-probe metrics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geodino.errors import InputError
from geodino.eval.metrics import (
    DetectionMeter,
    RegressionMeter,
    SegmentationMeter,
    block_means,
    check_labels,
    regression_scores,
    tree_cover,
    tree_iou_degenerate,
)


def test_miou_with_ignore_index_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 2]])
    m = SegmentationMeter(3, ignore_index=255, class_names=["a", "b", "c"])
    m.update(pred, target)
    s = m.compute()
    # class 0: tp 1, fp 1 (pixel 5), fn 1 -> 1/3 ; class 1: tp 2, fp 1 -> 2/3 ; class 2: tp 1, fn 1 -> 1/2
    assert s["IoU/a"] == pytest.approx(1 / 3)
    assert s["IoU/b"] == pytest.approx(2 / 3)
    assert s["IoU/c"] == pytest.approx(1 / 2)
    assert s["mIoU"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert s["pixel_acc"] == pytest.approx(4 / 6)  # the two ignored pixels do not count


def test_miou_skips_classes_absent_everywhere():
    m = SegmentationMeter(4, ignore_index=None)
    m.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]))
    s = m.compute()
    assert s["mIoU"] == pytest.approx(1.0)
    assert math.isnan(s["IoU/2"]) and math.isnan(s["IoU/3"])


def test_label_outside_classes_is_refused():
    with pytest.raises(InputError, match=r"holds 1 label value \(5\) but num_classes=3"):
        check_labels(torch.tensor([0, 1, 5, 255]), 3, 255, "mask x.png")
    check_labels(torch.tensor([0, 2, 255]), 3, 255, "ok")


def test_block_r2_on_a_constructed_case():
    # a 106x106 tile: after the 3-px border it is 100x100 = four 50x50 blocks with constant values
    target = torch.zeros(106, 106)
    pred = torch.zeros(106, 106)
    vals_t = [[1.0, 2.0], [3.0, 4.0]]
    vals_p = [[1.5, 2.0], [3.0, 3.5]]
    for i in range(2):
        for j in range(2):
            target[3 + 50 * i : 53 + 50 * i, 3 + 50 * j : 53 + 50 * j] = vals_t[i][j]
            pred[3 + 50 * i : 53 + 50 * i, 3 + 50 * j : 53 + 50 * j] = vals_p[i][j]
    target[:3] = 100.0  # the border is dropped: it must not affect block means
    means, ok = block_means(target, None)
    assert ok.all() and means.tolist() == [1.0, 2.0, 3.0, 4.0]
    meter = RegressionMeter()
    meter.update(pred, target)
    s = meter.compute()
    # R2 = 1 - (0.25 + 0 + 0 + 0.25) / sum((y - 2.5)^2) = 1 - 0.5 / 5
    assert s["block_R2"] == pytest.approx(0.9)


def test_block_with_invalid_pixel_is_dropped():
    x = torch.ones(56, 106)
    valid = torch.ones(56, 106, dtype=torch.bool)
    valid[10, 10] = False
    _means, ok = block_means(x, valid)
    assert ok.tolist() == [False, True]


def test_regression_scores_by_hand():
    pred = torch.tensor([1.0, 3.0, 0.0, 5.0], dtype=torch.float64)
    y = torch.tensor([2.0, 3.0, 1.0, 3.0], dtype=torch.float64)
    s = regression_scores(pred, y)
    assert s["MAE"] == pytest.approx(1.0)
    assert s["RMSE"] == pytest.approx(math.sqrt((1 + 0 + 1 + 4) / 4))
    assert s["bias"] == pytest.approx(0.0)
    assert s["R2"] == pytest.approx(1 - 6 / 2.75)
    assert s["nMAE"] == pytest.approx((1 / 3 + 0 + 1 / 2 + 2 / 4) / 4)
    # trees >= 2 m: pred {1? no, 3, 5} -> idx 1, 3 ; y -> idx 0, 1, 3 -> IoU 2/3
    assert s["tree_IoU"] == pytest.approx(2 / 3)


def test_tree_iou_of_an_all_tree_prediction_is_the_reference_cover_and_is_flagged():
    y = torch.tensor([0.0, 1.0, 2.5, 10.0], dtype=torch.float64)  # reference trees (>= 2 m): 2 of 4
    everywhere = torch.tensor([3.0, 4.0, 5.0, 6.0], dtype=torch.float64)  # every pixel a tree
    assert regression_scores(everywhere, y)["tree_IoU"] == pytest.approx(0.5)  # = 2 / 4, the reference cover
    cover = tree_cover(everywhere, y)
    assert cover == {"tree_cover_pred": 1.0, "tree_cover_ref": 0.5} and tree_iou_degenerate(cover)
    nowhere = torch.full((4,), 0.5, dtype=torch.float64)  # no pixel a tree: IoU 0 whatever the reference
    assert regression_scores(nowhere, y)["tree_IoU"] == 0.0
    assert tree_iou_degenerate(tree_cover(nowhere, y))
    # the hand case above (pred trees at idx 1, 3): half the prediction is trees, the IoU means something
    mixed = torch.tensor([1.0, 3.0, 0.0, 5.0], dtype=torch.float64)
    cover = tree_cover(mixed, y)
    assert cover == {"tree_cover_pred": 0.5, "tree_cover_ref": 0.5} and not tree_iou_degenerate(cover)
    meter = RegressionMeter()
    meter.update(everywhere[None], y[None], torch.tensor([[True, True, True, False]]))  # 10 m pixel invalid
    assert meter.tree_cover() == {"tree_cover_pred": 1.0, "tree_cover_ref": pytest.approx(1 / 3)}


def test_regression_meter_ignores_invalid_pixels():
    meter = RegressionMeter()
    meter.update(torch.tensor([[1.0, 100.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([[True, False]]))
    assert meter.compute()["MAE"] == pytest.approx(1.0)


def test_map_on_a_hand_made_case():
    # two reference boxes; one exact detection (score 0.9) and one false positive (0.8): recall tops at 0.5 with
    # precision 1, so COCO's 101-point AP is 51/101 at every IoU threshold
    meter = DetectionMeter(["tree"])
    meter.update(
        [
            {
                "boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]),
                "scores": torch.tensor([0.9, 0.8]),
                "labels": torch.tensor([0, 0]),
            }
        ],
        [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), "labels": torch.tensor([0, 0])}],
    )
    s = meter.compute()
    assert s["mAP"] == pytest.approx(51 / 101, abs=1e-4)
    assert s["mAP50"] == pytest.approx(51 / 101, abs=1e-4)


def _dense_scene(n_objects: int, n_false: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """One image with `n_objects` exactly detected reference boxes (scores 0.9 ... 0.5) plus `n_false` false
    positives scored below every true detection."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.arange(n_objects, dtype=torch.float32)[:, None] * torch.tensor([12.0, 0.0])
    xy = xy + torch.tensor([0.0, 5.0])
    gt = torch.cat([xy, xy + 10.0], 1)
    fp_xy = torch.rand(n_false, 2, generator=g) * 100 + torch.tensor([0.0, 500.0])
    boxes = torch.cat([gt, torch.cat([fp_xy, fp_xy + 10.0], 1)])
    scores = torch.cat([torch.linspace(0.9, 0.5, n_objects), torch.linspace(0.4, 0.1, n_false)])
    labels = torch.zeros(n_objects + n_false, dtype=torch.long)
    return [{"boxes": boxes, "scores": scores, "labels": labels}], [{"boxes": gt, "labels": labels[:n_objects]}]


def test_map_with_a_raised_detection_cap_is_reported():
    # 150 trees, all found: mAP is 1 at max_detections=200 (pycocotools' summarize() reads its first statistic at a
    # hard-coded 100 detections, so torchmetrics' `map` was -1 and the probe reported NaN for any other cap)
    preds, targets = _dense_scene(150, 20)
    meter = DetectionMeter(["tree"], max_detections=200)
    meter.update(preds, targets)
    s = meter.compute()
    assert s["mAP"] == pytest.approx(1.0)
    assert s["mAP50"] == pytest.approx(1.0) and s["mAR200"] == pytest.approx(1.0)
    # a lower cap keeps the 50 best-scored detections: recall tops at 50/150 with precision 1 (COCO's 101 recall
    # points: those at r <= 1/3, i.e. 34 of them)
    meter = DetectionMeter(["tree"], max_detections=50)
    meter.update(preds, targets)
    assert meter.compute()["mAP"] == pytest.approx(34 / 101, abs=1e-4)


def test_map_and_per_class_ap_at_any_cap_equal_torchmetrics_when_no_image_exceeds_it():
    from torchmetrics.detection import MeanAveragePrecision

    g = torch.Generator().manual_seed(1)

    def boxes(n: int) -> torch.Tensor:
        xy = torch.rand(n, 2, generator=g) * 200
        return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 30 + 5], 1)

    preds, targets = [], []
    for _ in range(5):
        gt, gl = boxes(20), torch.randint(0, 3, (20,), generator=g)
        p = torch.cat([gt + torch.randn(20, 4, generator=g) * 3, boxes(30)])
        pl = torch.cat([gl, torch.randint(0, 4, (30,), generator=g)])  # class 3 is only ever predicted
        preds.append({"boxes": p, "scores": torch.rand(50, generator=g), "labels": pl})
        targets.append({"boxes": gt, "labels": gl})
    preds.append({"boxes": boxes(3), "scores": torch.rand(3, generator=g), "labels": torch.zeros(3, dtype=torch.long)})
    targets.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)})  # an empty image
    ref = MeanAveragePrecision(  # with pycocotools' float64 thresholds, as DetectionMeter passes them
        box_format="xyxy",
        class_metrics=True,
        backend="pycocotools",
        iou_thresholds=np.linspace(0.5, 0.95, 10).tolist(),
        rec_thresholds=np.linspace(0.0, 1.0, 101).tolist(),
    )
    ref.update(preds, targets)
    r = ref.compute()
    for cap in (100, 200):  # at most 50 detections per image: every cap >= 50 gives COCO's numbers
        meter = DetectionMeter(["a", "b", "c", "d"], class_metrics=True, max_detections=cap)
        meter.update(preds, targets)
        s = meter.compute()
        assert s["mAP"] == pytest.approx(float(r["map"]), abs=1e-6)
        assert s["mAP50"] == pytest.approx(float(r["map_50"]), abs=1e-6)
        for name, v in zip("abc", r["map_per_class"].tolist()):
            assert s[f"AP/{name}"] == pytest.approx(v, abs=1e-6)
        assert math.isnan(s["AP/d"])  # no reference box of class d: no AP, as COCO's -1


def test_objects_a_tile_edge_cut_are_ignored_not_false_positives():
    """A held-out tile's object mostly outside it (below min_visible) is a COCO crowd region: detecting it is
    neither a true nor a false positive. Hand case: two real boxes found at scores 0.8 and 0.7, the cut object at
    0.9. Ignored: AP = 1.0. Dropped from the truth, as before: the 0.9 detection is a false positive ranked first,
    precision 1/2 at recall 1/2 and 2/3 at recall 1, interpolated (max to the right) to 2/3 at every recall."""
    from geodino.eval.boxes import tile_sample

    image = torch.zeros(3, 64, 64)
    boxes = torch.tensor([[2.0, 2.0, 12.0, 12.0], [26.0, 2.0, 46.0, 12.0], [20.0, 20.0, 30.0, 30.0]])
    s = {"image": image, "boxes": boxes, "labels": torch.tensor([0, 0, 0]), "name": "scene"}
    tile = tile_sample(s, 0, 0, 32, 0.5)  # box 1 is 30 % inside (x 26..32 of 26..46), box 2 wholly inside
    assert tile["boxes"].tolist() == [[2.0, 2.0, 12.0, 12.0], [20.0, 20.0, 30.0, 30.0]]
    assert tile["ignore_boxes"].tolist() == [[26.0, 2.0, 32.0, 12.0]] and tile["ignore_labels"].tolist() == [0]

    pred = {
        "boxes": torch.tensor([[26.0, 2.0, 32.0, 12.0], [2.0, 2.0, 12.0, 12.0], [20.0, 20.0, 30.0, 30.0]]),
        "scores": torch.tensor([0.9, 0.8, 0.7]),
        "labels": torch.tensor([0, 0, 0]),
    }
    meter = DetectionMeter(["tree"])
    meter.update([pred], [tile])
    assert meter.compute()["mAP"] == pytest.approx(1.0)
    dropped = DetectionMeter(["tree"])
    dropped.update([pred], [{"boxes": tile["boxes"], "labels": tile["labels"]}])
    assert dropped.compute()["mAP"] == pytest.approx(2 / 3, abs=1e-2)  # FP first: precision 1/2 then 2/3
