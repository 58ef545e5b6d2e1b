"""Detection on images larger than a tile: overlapping windows, their boxes merged into one set per image.

A window sees an object that straddles its inner edge only in part, and a trained detector boxes the visible part
(training tiles keep boxes that are at least `min_visible` inside, clipped to the tile). NMS alone does not merge
such a clipped box with the whole box of the same object from the neighbouring window: their IoU is the visible
fraction (0.5 for half an object, and torchvision's NMS suppresses only above `nms_iou`), so the clipped box stayed
as a false positive, or, scored higher, replaced the whole box (a localisation error at IoU 0.5). On OSBS_029
(61 crowns, 400 px) a per-window oracle gave mAP 0.86 at 200 px windows and 0.68 at 128 px windows (overlap 64).

Here a box touching an inner edge of its window (an edge another window lies beyond, within 1 px) is dropped when
at least `cut_cover` (the probe's key; default `CUT_COVER`, 0.5) of it lies inside an untouched box of the same
label from another window; then NMS (`nms_iou`) merges the rest, as before. Objects larger than the windows'
overlap are cut in every window: their boxes are all kept for NMS, as before. Kept apart from the probe
(`detection.py` re-exports `predict_image`). A lower `cut_cover` merges more loosely drawn partial boxes; a higher
one (up to 1: wholly inside) keeps a partial box that reaches past the whole box (e.g. two touching objects).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from geodino.eval import dense
from geodino.eval.head_training import head_device, to_host

__all__ = ["CUT_COVER", "drop_cut_duplicates", "predict_image"]

# fraction of a box cut by a window edge that lies inside another window's uncut box of the same label for it to be
# a part of that object (SAHI merges slices at intersection over the smaller box 0.5)
CUT_COVER = 0.5


def cut_by_window(boxes: Tensor, r: int, c: int, size: int, h: int, w: int) -> Tensor:
    """Which of a window's `boxes` (xyxy, window pixels) touch an inner edge of the window at (r, c) of an h x w
    image: an edge with image beyond it (within 1 px), where the object may go on."""
    cut = torch.zeros(len(boxes), dtype=torch.bool)
    if c > 0:
        cut |= boxes[:, 0] <= 1
    if r > 0:
        cut |= boxes[:, 1] <= 1
    if c + size < w:
        cut |= boxes[:, 2] >= size - 1
    if r + size < h:
        cut |= boxes[:, 3] >= size - 1
    return cut


def drop_cut_duplicates(boxes: Tensor, labels: Tensor, window: Tensor, cut: Tensor, cover: float = CUT_COVER) -> Tensor:
    """Indices of the boxes (image pixels) to keep: all but the `cut` ones with at least `cover` of their area
    inside an uncut box of the same label found in another `window`."""
    if not bool(cut.any()):
        return torch.arange(len(boxes))
    x0 = torch.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = torch.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = torch.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y1 = torch.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = (x1 - x0).clamp_min(0) * (y1 - y0).clamp_min(0)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp_min(1e-6)
    inside = inter / area[:, None]  # [i, j]: the fraction of box i inside box j
    other = (window[:, None] != window[None, :]) & (labels[:, None] == labels[None, :]) & ~cut[None, :]
    drop = cut & ((inside >= cover) & other).any(1)
    return (~drop).nonzero().squeeze(1)


@torch.no_grad()
def predict_image(model: nn.Module, image: Tensor, cfg: Any, whole_image_cap: bool = True) -> dict[str, Tensor]:
    """Detections on a [C,H,W] image, on the host: one pass when it fits in a tile, else overlapping windows
    (`cfg.tile_size`, `cfg.tile_overlap`) merged as the module docstring says. The detector keeps at most
    `cfg.max_detections` per window; `whole_image_cap` keeps that many for the whole image too (COCO's cap per
    scored image), off for exported predictions (a scene of thousands of trees kept its 100 best). The model
    runs on its device; each window's detections come back to the host."""
    from torchvision.ops import batched_nms

    model.eval()
    device = head_device(model)
    h, w = image.shape[-2:]
    size = cfg.tile_size
    shift = 1 if cfg.detector == "faster_rcnn" else 0  # Faster R-CNN's class 0 is the background
    if h <= size and w <= size:
        out = to_host(model([image.to(device)])[0])
        return {"boxes": out["boxes"], "scores": out["scores"], "labels": out["labels"] - shift}
    stride = size - min(cfg.tile_overlap, size // 2)
    boxes, scores, labels, windows, cuts = [], [], [], [], []
    for k, (r, c) in enumerate(dense.tile_grid(h, w, size, stride)):
        out = to_host(model([image[:, r : r + size, c : c + size].to(device)])[0])
        cuts.append(cut_by_window(out["boxes"], r, c, size, h, w))
        boxes.append(out["boxes"] + torch.tensor([c, r, c, r], dtype=out["boxes"].dtype))
        scores.append(out["scores"])
        labels.append(out["labels"] - shift)
        windows.append(torch.full((len(out["boxes"]),), k))
    b, s, lab = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    kept = drop_cut_duplicates(b, lab, torch.cat(windows), torch.cat(cuts), getattr(cfg, "cut_cover", CUT_COVER))
    b, s, lab = b[kept], s[kept], lab[kept]
    keep = batched_nms(b, s, lab, cfg.nms_iou)
    if whole_image_cap:
        keep = keep[: cfg.max_detections]
    return {"boxes": b[keep], "scores": s[keep], "labels": lab[keep]}
