"""Merging the detections of overlapping windows (images larger than tile_size).

Before: the windows' boxes went through NMS alone, so the clipped box a window gives for an object straddling its
inner edge survived beside the whole box from the neighbouring window (IoU = the visible fraction, 0.5 for half an
object, not above nms_iou 0.5), or replaced it when scored higher. Now a box touching an inner window edge is
dropped when it lies mostly inside an untouched box of the same label from another window.
"""

from __future__ import annotations

import torch
from torch import nn

from geodino.eval.detection import DetectionProbeConfig, predict_image
from geodino.eval.metrics import DetectionMeter

# 96 x 64 image, windows of 64 at overlap 32: columns [0, 64) and [32, 96)
OBJECTS = torch.tensor(
    [
        [20.0, 10.0, 44.0, 30.0],  # whole in window 0; window 1 sees x 32..44 (half of it), touching its left edge
        [70.0, 36.0, 90.0, 60.0],  # whole in window 1; window 0 sees x 70..64: nothing
        [52.0, 40.0, 76.0, 56.0],  # whole in window 1; window 0 sees x 52..64 (half), touching its right edge
        [36.0, 2.0, 56.0, 8.0],  # inside both windows whole: the same box twice, merged by NMS
    ]
)


class WindowOracle(nn.Module):
    """A perfect detector per window: the objects clipped to the window, kept when at least half is visible; a
    clipped box scores 0.9, a whole one 0.8 (a detector's confidence need not favour the whole box). The window's
    column offset is read from the image (band 0 holds the pixel column)."""

    def __init__(self, objects: torch.Tensor = OBJECTS) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.objects = objects

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for im in images:
            c, w = int(im[0, 0, 0]), im.shape[-1]
            b = self.objects.clone()
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            b[:, [0, 2]] = (b[:, [0, 2]] - c).clamp(0, w)
            seen = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]) / area
            keep = seen >= 0.5
            scores = torch.where(seen[keep] < 1, 0.9, 0.8)
            out.append({"boxes": b[keep], "scores": scores, "labels": torch.ones(int(keep.sum()), dtype=torch.long)})
        return out


def _image() -> torch.Tensor:
    cols = torch.arange(96.0).expand(64, 96)
    return torch.stack([cols, torch.zeros(64, 96), torch.zeros(64, 96)])


def test_clipped_boxes_at_inner_window_edges_merge_with_the_whole_box():
    cfg = DetectionProbeConfig(tile_size=64, tile_overlap=32)
    pred = predict_image(WindowOracle(), _image(), cfg)
    got = sorted(pred["boxes"].tolist())
    assert got == sorted(OBJECTS.tolist())  # one whole box per object (was 6 boxes: two clipped halves kept)
    assert pred["labels"].tolist() == [0] * 4
    meter = DetectionMeter(["tree"])
    meter.update([pred], [{"boxes": OBJECTS, "labels": torch.zeros(4, dtype=torch.long)}])
    assert meter.compute()["mAP"] == 1.0  # a perfect detector per window scores 1 on the whole image


def test_an_object_larger_than_the_overlap_keeps_its_boxes_for_nms():
    """An object cut in every window has no uncut box to merge into: both clipped boxes go to NMS, as before (IoU
    0.5, not above nms_iou: both stay), rather than the object being lost."""
    oracle = WindowOracle(torch.tensor([[16.0, 10.0, 80.0, 50.0]]))  # 64 px wide: cut by both windows
    pred = predict_image(oracle, _image(), DetectionProbeConfig(tile_size=64, tile_overlap=32, nms_iou=0.5))
    assert sorted(pred["boxes"].tolist()) == [[16.0, 10.0, 64.0, 50.0], [32.0, 10.0, 80.0, 50.0]]


class OnePerWindow(nn.Module):
    """One object in every window (a 4 px box near its corner)."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        one = {
            "boxes": torch.tensor([[2.0, 2.0, 6.0, 6.0]]),
            "scores": torch.tensor([0.9]),
            "labels": torch.tensor([1]),
        }
        return [one for _ in images]


def test_exported_predictions_of_a_large_scene_are_not_cut_to_max_detections(tmp_path):
    """The per-image cap (COCO's 100, for mAP) also cut the exported boxes of a whole scene: a 96 px image with
    144 objects (one per 8 px window) wrote 100 to its GeoJSON. Now the cap applies per window when exporting."""
    import json

    import numpy as np
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from geodino.eval.detection import _export_predictions
    from geodino.eval.scaling import InputScaling
    from tests.eval.dense_backbone import tiny_backbone

    img = tmp_path / "big.tif"
    profile = dict(driver="GTiff", width=96, height=96, count=3, dtype="uint8", crs=CRS.from_epsg(32617))
    with rasterio.open(img, "w", transform=from_origin(400000, 3000000, 0.5, 0.5), **profile) as dst:
        dst.write(np.full((3, 96, 96), 100, np.uint8))
    cfg = DetectionProbeConfig(predict_images=[str(img)], tile_size=8, tile_overlap=0, max_detections=100)
    _export_predictions(OnePerWindow(), cfg, tiny_backbone(), InputScaling.of(cfg), tmp_path, ["tree"], None, None)
    fc = json.loads((tmp_path / "big_boxes.geojson").read_text())
    assert len(fc["features"]) == 144
    assert len(predict_image(OnePerWindow(), torch.zeros(3, 96, 96), cfg)["boxes"]) == 100  # scoring keeps the cap
