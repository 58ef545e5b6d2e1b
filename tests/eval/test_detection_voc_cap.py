"""VOC AP (`voc_mAP50`, `voc07_mAP50`) scores every detection of an image by default, as the VOC devkit (no per-image
cap); `voc_max_detections` sets one. Before, VOC AP scored COCO's best `max_detections` (100), so a crafted image of
150 objects that a stand-in detector finds exactly had voc_mAP50 2/3 instead of 1. COCO's metrics are unchanged."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError
from geodino.eval.detection import DetectionProbeConfig
from tests.eval.conftest import evaluate_dense


def _score(**keys) -> dict[str, float]:
    out, model, cfg = evaluate_dense(**keys)
    assert model.detections_per_img == cfg.max_detections  # the detector's own cap is back
    return out


def test_voc_ap_has_no_per_image_cap_by_default():
    out = _score()
    assert out["voc_mAP50"] == pytest.approx(1.0)  # was 2/3: only COCO's best 100 of 150 were scored
    assert out["voc07_mAP50"] == pytest.approx(1.0)
    assert out["mAR100"] == pytest.approx(100 / 150)  # COCO keeps its 100


def test_voc_max_detections_caps_each_image():
    out = _score(voc_max_detections=100)
    assert out["voc_mAP50"] == pytest.approx(100 / 150)  # precision 1 up to recall 2/3
    assert out["voc07_mAP50"] == pytest.approx(7 / 11)  # recall points 0 .. 0.6 reached


def test_the_voc_cap_leaves_coco_metrics_unchanged():
    base = _score(voc_max_detections=100)
    for cap in (0, 400):  # 400 raises the detector's cap while scoring: the best 100 stay the same
        out = _score(voc_max_detections=cap)
        for key in ("mAP", "mAP50", "mAP75", "mAR100", "box_recall", "box_precision"):
            assert out[key] == pytest.approx(base[key], nan_ok=True), (cap, key)


def test_voc_max_detections_must_not_be_negative():
    with pytest.raises(ConfigError, match="voc_max_detections"):
        DetectionProbeConfig(voc_max_detections=-1).validate()
