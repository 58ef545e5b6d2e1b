"""DetectionMeter against pycocotools' COCOeval run directly, and with a single class seen among several names.

pycocotools is a core dependency of geodino (pyproject `dependencies`), so the reference is always available.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from geodino.eval.metrics import DetectionMeter


def test_per_class_ap_when_a_single_class_of_several_names_occurs():
    """torchmetrics returns `classes` as a 0-d tensor when one class occurs: the meter used to call len() on an
    int and crash at the end of a detection probe run on a multi-class dataset."""
    meter = DetectionMeter(["tree", "snag"], class_metrics=True)  # what detection._evaluate builds for 2 names
    box = torch.tensor([[10.0, 10.0, 50.0, 50.0]])
    meter.update(
        [{"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}],
        [{"boxes": box, "labels": torch.tensor([1])}],
    )
    out = meter.compute()
    assert out["mAP"] == pytest.approx(1.0)
    assert out["AP/snag"] == pytest.approx(1.0)
    assert "AP/tree" not in out  # never seen: no AP


def _random_case(seed: int, n_img: int, k: int, crowd: bool) -> tuple[list[dict], list[dict]]:
    """Jittered reference boxes plus false positives; every 4th image has no reference box."""
    rng = np.random.default_rng(seed)

    def boxes(n: int) -> np.ndarray:
        xy = rng.uniform(0, 160, (n, 2))
        return np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], 1).astype(np.float32)

    preds, targets = [], []
    for i in range(n_img):
        ng = int(rng.integers(0, 8)) if i % 4 else 0
        gb, gl = boxes(ng), rng.integers(0, k, ng)
        pb = np.concatenate([gb + rng.normal(0, 3, gb.shape).astype(np.float32), boxes(int(rng.integers(0, 6)))])
        pb[:, 2:] = np.maximum(pb[:, 2:], pb[:, :2] + 1)
        pl = np.concatenate([gl, rng.integers(0, k, len(pb) - ng)])
        t = {"boxes": torch.from_numpy(gb), "labels": torch.from_numpy(gl).long()}
        if crowd and ng:
            t["ignore_boxes"] = torch.from_numpy(boxes(2))
            t["ignore_labels"] = torch.from_numpy(rng.integers(0, k, 2)).long()
        scores = torch.from_numpy(rng.uniform(0, 1, len(pb))).float()
        preds.append({"boxes": torch.from_numpy(pb), "scores": scores, "labels": torch.from_numpy(pl).long()})
        targets.append(t)
    return preds, targets


def _cocoeval(preds: list[dict], targets: list[dict], k: int) -> dict[str, float]:
    """mAP (precision array, area all, last cap), mAP50, mAP75 and per-class AP from COCOeval on xywh json."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        images.append({"id": i, "width": 200, "height": 200})
        rows = [(b, c, 0) for b, c in zip(t["boxes"].tolist(), t["labels"].tolist(), strict=True)]
        if "ignore_boxes" in t:
            rows += [(b, c, 1) for b, c in zip(t["ignore_boxes"].tolist(), t["ignore_labels"].tolist(), strict=True)]
        for b, c, crowd in rows:
            w, h = b[2] - b[0], b[3] - b[1]
            ann = {"image_id": i, "category_id": c, "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": crowd}
            anns.append({"id": len(anns) + 1, **ann})
        for b, s, c in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True):
            dets.append({"image_id": i, "category_id": c, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(k)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    pr = ev.eval["precision"][:, :, :, 0, -1]
    ref = {"mAP": float(pr[pr > -1].mean()), "mAP50": float(ev.stats[1]), "mAP75": float(ev.stats[2])}
    for c in range(k):
        q = pr[:, :, c]
        ref[f"AP/{c}"] = float(q[q > -1].mean()) if (q > -1).any() else math.nan
    return ref


# cases where torchmetrics' float32 default thresholds moved mAP in the 3rd decimal (0.18162 vs 0.18228)
@pytest.mark.parametrize(
    ("seed", "n_img", "k", "crowd"), [(3, 16, 4, False), (6, 12, 3, True), (7, 12, 3, False), (7, 12, 3, True)]
)
def test_map_equals_cocoeval_run_directly(seed: int, n_img: int, k: int, crowd: bool):
    preds, targets = _random_case(seed, n_img, k, crowd)
    meter = DetectionMeter([str(c) for c in range(k)], class_metrics=True)
    meter.update(preds, targets)
    got = meter.compute()
    ref = _cocoeval(preds, targets, k)
    for key, want in ref.items():
        if math.isnan(want):
            assert math.isnan(got.get(key, math.nan)), key
        else:
            # mAP50/mAP75 come back as float32 tensors: 1e-6 is their rounding, far below the 1e-3 differences
            assert got[key] == pytest.approx(want, abs=1e-6), key
