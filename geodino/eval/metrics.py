"""Probe metrics: classification (single- and multi-label, selection score) and the dense probes (segmentation,
canopy height, detection).

torchmetrics does the counting where it has the metric (confusion matrix, MAE/MSE/R2, COCO mAP through
pycocotools); the EO-specific definitions it lacks are written here from their papers:

- mIoU as mmseg: IoU per class from the confusion matrix, NaN for classes absent from both prediction and
  target, mean over the others. PANGAEA's `SegEvaluator` differs there: its IoU is intersection / (union + 1e-6),
  so a class absent from both counts 0 in its mean over all classes (but the ignore index); its `mAcc` is the
  overall pixel accuracy (our `pixel_acc`), not the mean of the per-class accuracies.
- block R2 as HighResCanopyHeight (`inference.py`): drop a 3-pixel border of each tile, average 50x50-pixel
  blocks, R2 between the block means.
- nMAE = mean(|pred - y| / (1 + |y|)) and tree-cover IoU at 2 m, as Open-Canopy (`compute_metrics.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from geodino.errors import ConfigError, InputError, plural

# ----------------------------------------------------------------------------------------------- segmentation


def check_labels(mask: Tensor, num_classes: int, ignore_index: int | None, where: str) -> None:
    """Refuse masks holding class ids outside [0, num_classes) other than the ignore index (one clear line)."""
    values = torch.unique(mask)
    if ignore_index is not None:
        values = values[values != ignore_index]
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.numel():
        shown = ", ".join(str(int(v)) for v in bad[:5])
        raise InputError(
            f"{where} holds {plural(bad.numel(), 'label value')} ({shown}{', ...' if bad.numel() > 5 else ''}) but "
            f"num_classes={num_classes} (labels 0..{num_classes - 1}, "
            f"ignore_index={ignore_index}); set num_classes to cover every label, or map values to class ids with "
            f"label_map (e.g. label_map={{{int(bad[0])}: 1}})"
        )


IGNORE_MODES = ("pixels", "mean")  # what `metric_ignore_classes` does; see `segmentation_scores`


class SegmentationMeter:
    """Streams predictions and masks into a confusion matrix; reports mIoU, per-class IoU, pixel accuracy.

    `mean_excludes` and `ignore_mode` are the probe's `metric_ignore_classes` and `metric_ignore_mode` (see
    `segmentation_scores`). An `ignore_index` inside 0..num_classes-1 is also left out of the means: its pixels
    are dropped, so its IoU could only be 0 or undefined (torchmetrics' `JaccardIndex` leaves it out too).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        class_names: Sequence[str] | None = None,
        mean_excludes: Sequence[int] = (),
        ignore_mode: str = "pixels",
    ):
        from torchmetrics.classification import MulticlassConfusionMatrix

        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mean_excludes = tuple(int(c) for c in mean_excludes)  # class ids left out of mIoU/mAcc means
        self.ignore_mode = ignore_mode
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self._cm = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index, validate_args=False)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: `pred` class ids (or logits [B,K,H,W]) and `target` ids of the same spatial size."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in size")
        self._cm.update(pred.reshape(-1).long(), target.reshape(-1).long())

    @property
    def confusion(self) -> Tensor:
        """[K,K] counts, rows = target, columns = prediction (every class's pixels, whatever the ignore mode)."""
        return self._cm.compute().to(torch.float64)

    def compute(self) -> dict[str, float]:
        """`mIoU`, `pixel_acc`, `mAcc` and `IoU/<class>` (NaN for classes absent from target and prediction)."""
        excludes = list(self.mean_excludes)
        inside = self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes
        if inside:  # its row is empty already (torchmetrics dropped its pixels); only the means change
            assert self.ignore_index is not None  # `inside` says so
            excludes.append(int(self.ignore_index))
        out = segmentation_scores(self.confusion, self.class_names, excludes, self.ignore_mode)
        if inside:
            assert self.ignore_index is not None
            out[f"IoU/{self.class_names[int(self.ignore_index)]}"] = math.nan
        return out


def segmentation_scores(
    cm: Tensor, class_names: Sequence[str] | None = None, mean_excludes: Sequence[int] = (), mode: str = "pixels"
) -> dict[str, float]:
    """Scores from a confusion matrix (rows target, columns prediction).

    `mean_excludes`: class ids left out of the mIoU and mAcc means (GEO-Bench's m-cashew-plantation leaves out
    class 0, "no data"). `mode` says what happens to their pixels:

    - `pixels` (default): pixels whose target is such a class are dropped (their rows of the matrix), as
      torchmetrics' `JaccardIndex(ignore_index=c)` (TerraTorch's segmentation metrics) and DINOv3's
      `reduce_zero_label` (its segmentation eval drops label-0 pixels) do. A prediction of the class on another
      class's pixel still counts against that class. The class's own `IoU/<class>` is NaN (no pixel left).
    - `mean`: the pixels stay in the matrix (a class-0 pixel predicted as class 1 lowers class 1's IoU) and the
      class's IoU is still reported; only the means leave it out.

    The two agree when the scored masks hold no pixel of the classes (DINOv3 on m-cashew's test split).
    """
    if mode not in IGNORE_MODES:
        raise ConfigError(f"metric_ignore_mode={mode!r} must be one of {', '.join(IGNORE_MODES)}")
    cm = cm.to(torch.float64).clone()
    kept = torch.ones(cm.shape[0], dtype=torch.bool)
    for c in mean_excludes:
        if not 0 <= int(c) < cm.shape[0]:
            raise ConfigError(f"metric_ignore_classes holds {c}; class ids are 0..{cm.shape[0] - 1}")
        kept[int(c)] = False
    if not kept.any():
        raise ConfigError("metric_ignore_classes leaves out every class; the mIoU mean needs at least one")
    if mode == "pixels":
        cm[~kept] = 0.0  # drop the pixels whose target is a left-out class
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))
    support = cm.sum(1)
    acc = torch.where(support > 0, tp / support.clamp_min(1), torch.full_like(tp, math.nan))
    if mode == "pixels":
        iou[~kept] = math.nan  # no pixel of the class is left to score
    total = cm.sum()
    names = list(class_names) if class_names else [str(i) for i in range(cm.shape[0])]
    miou, macc = iou[kept], acc[kept]
    out = {
        "mIoU": float(torch.nanmean(miou)) if torch.isfinite(miou).any() else math.nan,
        "pixel_acc": float(tp.sum() / total) if total > 0 else math.nan,
        "mAcc": float(torch.nanmean(macc)) if torch.isfinite(macc).any() else math.nan,
    }
    for name, v in zip(names, iou.tolist()):
        out[f"IoU/{name}"] = v
    return out


# ----------------------------------------------------------------------------------------------- regression


def _flat_valid(pred: Tensor, target: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    pred = pred.detach().to(torch.float64).reshape(-1)
    target = target.detach().to(torch.float64).reshape(-1)
    keep = torch.isfinite(target) & torch.isfinite(pred)
    if valid is not None:
        keep &= valid.reshape(-1).bool()
    return pred[keep], target[keep]


def r2_score(pred: Tensor, target: Tensor) -> float:
    """Coefficient of determination 1 - SS_res/SS_tot (torchmetrics); NaN with fewer than 2 values."""
    from torchmetrics.functional import r2_score as tm_r2

    if pred.numel() < 2 or float(target.var()) == 0.0:
        return math.nan
    return float(tm_r2(pred, target))


def block_means(x: Tensor, valid: Tensor | None, block: int = 50, border: int = 3) -> tuple[Tensor, Tensor]:
    """Means of `block`x`block` blocks of a [H,W] or [B,H,W] map after dropping `border` pixels on each side.

    Returns (means [N], fully_valid [N]); HighResCanopyHeight pools with `AvgPool2d(50)` (floor), so partial
    blocks at the right/bottom edge are dropped. A block counts only when all its pixels are valid.
    """
    x = x.to(torch.float64)
    if x.dim() == 2:
        x = x[None]
    v = torch.ones_like(x, dtype=torch.bool) if valid is None else valid.reshape(x.shape).bool()
    if border:
        x = x[:, border:-border, border:-border]
        v = v[:, border:-border, border:-border]
    if x.shape[-1] < block or x.shape[-2] < block:
        return x.new_zeros(0), torch.zeros(0, dtype=torch.bool)
    x = torch.where(v, x, torch.zeros_like(x))
    pool = torch.nn.functional.avg_pool2d
    means = pool(x[:, None], block).reshape(-1)
    frac = pool(v[:, None].to(torch.float64), block).reshape(-1)
    return means, frac >= 1.0


class RegressionMeter:
    """Streams canopy-height predictions; reports MAE, RMSE, R2, bias, block R2, nMAE, tree-cover IoU.

    Pixel metrics use every valid pixel of every tile. Block R2 pools each added map (a tile) separately, as
    HighResCanopyHeight does with its 256x256 crops; tiles smaller than block + 2*border add no block.
    """

    def __init__(self, block: int = 50, border: int = 3, tree_threshold: float = 2.0):
        self.block, self.border, self.tree_threshold = block, border, tree_threshold
        self._pred: list[Tensor] = []
        self._target: list[Tensor] = []
        self._bp: list[Tensor] = []
        self._bt: list[Tensor] = []

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add maps [H,W] or [B,H,W] (metres) with an optional validity mask of the same shape."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in size")
        if valid is None:
            valid = torch.isfinite(target)
        valid = valid.reshape(target.shape).bool() & torch.isfinite(target)
        p, t = _flat_valid(pred, target, valid)
        self._pred.append(p.float())
        self._target.append(t.float())
        pm, ok = block_means(pred.detach().cpu(), valid.cpu(), self.block, self.border)
        tm, _ = block_means(torch.nan_to_num(target.detach().cpu()), valid.cpu(), self.block, self.border)
        self._bp.append(pm[ok])
        self._bt.append(tm[ok])

    def _pixels(self) -> tuple[Tensor, Tensor]:
        pred = torch.cat(self._pred).double() if self._pred else torch.zeros(0, dtype=torch.float64)
        target = torch.cat(self._target).double() if self._target else torch.zeros(0, dtype=torch.float64)
        return pred, target

    def compute(self) -> dict[str, float]:
        pred, target = self._pixels()
        bp = torch.cat(self._bp) if self._bp else torch.zeros(0, dtype=torch.float64)
        bt = torch.cat(self._bt) if self._bt else torch.zeros(0, dtype=torch.float64)
        return regression_scores(pred, target, bp, bt, self.tree_threshold)

    def tree_cover(self) -> dict[str, float]:
        """`tree_cover()` of the valid pixels added so far (what tells whether tree_IoU means anything)."""
        return tree_cover(*self._pixels(), self.tree_threshold)


def regression_scores(
    pred: Tensor,
    target: Tensor,
    block_pred: Tensor | None = None,
    block_target: Tensor | None = None,
    tree_threshold: float = 2.0,
) -> dict[str, float]:
    """Scores of flat valid pixels (metres). Block means are optional (block R2 is NaN without them)."""
    from torchmetrics.functional import mean_absolute_error, mean_squared_error

    if pred.numel() == 0:
        nan = math.nan
        return {k: nan for k in ("MAE", "RMSE", "R2", "bias", "block_R2", "nMAE", "tree_IoU", "n_pixels")}
    err = pred - target
    tree_p, tree_t = pred >= tree_threshold, target >= tree_threshold
    union = (tree_p | tree_t).sum()
    out = {
        "MAE": float(mean_absolute_error(pred, target)),
        "RMSE": float(mean_squared_error(pred, target, squared=False)),
        "R2": r2_score(pred, target),
        "bias": float(err.mean()),
        "block_R2": (
            r2_score(block_pred, block_target)
            if block_pred is not None and block_target is not None and block_pred.numel()
            else math.nan
        ),
        "nMAE": float((err.abs() / (1.0 + target.abs())).mean()),
        "tree_IoU": float((tree_p & tree_t).sum() / union) if union > 0 else math.nan,
        "n_pixels": float(pred.numel()),
    }
    return out


def tree_cover(pred: Tensor, target: Tensor, tree_threshold: float = 2.0) -> dict[str, float]:
    """Shares of predicted (`tree_cover_pred`) and reference (`tree_cover_ref`) pixels >= `tree_threshold`.

    When `tree_cover_pred` is 0 or 1 the tree mask of the prediction is empty or everything, so `tree_IoU` is 0 or
    the reference's cover fraction whatever the model, and within `TREE_IOU_ROOM` of that when it is nearly 0 or 1:
    `tree_iou_degenerate` says so.
    """
    if pred.numel() == 0:
        return {"tree_cover_pred": math.nan, "tree_cover_ref": math.nan}
    return {
        "tree_cover_pred": float((pred >= tree_threshold).double().mean()),
        "tree_cover_ref": float((target >= tree_threshold).double().mean()),
    }


TREE_IOU_ROOM = 0.01
"""A tree_IoU that can differ from a constant prediction's by at most this much ranks no model (`tree_iou_room`)."""


def tree_iou_room(cover: dict[str, float]) -> float:
    """The most the prediction can move `tree_IoU` away from that of the nearer constant mask, from the tree-cover
    shares p (predicted) and r (reference) of `tree_cover`: (1 - p) / p from "trees everywhere" (IoU r: the
    intersection loses at most 1 - p, the union is at least p) and min(p, r) / max(p, r) from "no tree" (IoU 0).
    0 when every or no pixel is predicted a tree, or when the reference has none (IoU 0 whatever is predicted)."""
    p, r = cover["tree_cover_pred"], cover["tree_cover_ref"]
    if not (math.isfinite(p) and math.isfinite(r)) or max(p, r) == 0:
        return math.nan  # no tree on either side: tree_IoU is NaN
    everywhere = (1.0 - p) / p if p > 0 else math.inf
    return min(everywhere, min(p, r) / max(p, r))


def tree_iou_degenerate(cover: dict[str, float]) -> bool:
    """True when `tree_IoU` cannot rank models: every or no predicted pixel is a tree, or so nearly so that the
    few others move it by at most `TREE_IOU_ROOM` from a constant mask's value (99.8 % trees: 0.002)."""
    return tree_iou_room(cover) <= TREE_IOU_ROOM


# ----------------------------------------------------------------------------------------------- detection


class DetectionMeter:
    """COCO-style mAP (IoU 0.50:0.95), mAP50 and mAP75 through torchmetrics' `MeanAveragePrecision`.

    `max_detections` is COCO's per-image cap (100); dense EO scenes (tree crowns, cars, buildings) may hold more
    objects, so the probe can raise it (the recall key follows it: `mAR<max_detections>`).

    `mAP` and `AP/<class>` are read from COCOeval's precision array at the last cap (area "all", IoU 0.50:0.95,
    101 recall points), as `mAP50`/`mAP75` are: pycocotools' `summarize()` takes its first statistic (what
    torchmetrics returns as `map` and `map_per_class`) at a hard-coded 100 detections, which is -1 (no value)
    whenever the caps do not include 100.
    """

    def __init__(
        self, class_names: Sequence[str] | None = None, class_metrics: bool = False, max_detections: int = 100
    ):
        from torchmetrics.detection import MeanAveragePrecision

        self.class_names = list(class_names) if class_names else None
        self.max_detections = max_detections
        self._map = MeanAveragePrecision(
            box_format="xyxy",
            iou_type="bbox",
            class_metrics=False,  # per-class AP comes from the precision array (see compute)
            backend="pycocotools",
            max_detection_thresholds=[1, 10, max_detections],
            # pycocotools' own thresholds (float64, as its Params builds them): torchmetrics' defaults come from a
            # float32 torch.linspace, whose 0.55, 0.6, ... and recall points differ from COCOeval's in the 8th
            # decimal, which moves a match or a recall step and changes mAP in the 3rd decimal
            iou_thresholds=coco_thresholds(0.5, 0.95, 0.05),
            rec_thresholds=coco_thresholds(0.0, 1.0, 0.01),
            extended_summary=True,  # COCOeval's precision array [T, R, K, A, M]
        )
        self.class_metrics = class_metrics
        self._map.warn_on_many_detections = False

    def update(self, preds: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> None:
        """`preds`: dicts of boxes [N,4] xyxy, scores [N], labels [N]; `targets`: boxes and labels, and optionally
        `ignore_boxes`/`ignore_labels`: COCO crowd regions (objects a tile edge cut), where a detection counts
        neither as a true nor as a false positive."""
        self._map.update(
            [{k: v.detach().cpu() for k, v in p.items() if k in ("boxes", "scores", "labels")} for p in preds],
            [_with_crowds(t) for t in targets],
        )

    def compute(self) -> dict[str, float]:
        res = self._map.compute()
        precision = res.get("precision")  # absent when there is no image or no detection at all
        # area "all" (index 0), the last (largest) detection cap: COCO's AP@[.50:.95] at maxDets[2]
        at_cap = precision[:, :, :, 0, -1] if precision is not None else None
        out = {"mAP": _mean_valid(at_cap), "mAP50": float(res["map_50"]), "mAP75": float(res["map_75"])}
        out[f"mAR{self.max_detections}"] = float(res[f"mar_{self.max_detections}"])
        # a 0-d tensor when a single class occurs among the predictions and targets
        classes = torch.atleast_1d(res["classes"]).tolist() if "classes" in res else []
        if self.class_metrics and at_cap is not None and classes and at_cap.shape[2] == len(classes):
            for k, c in enumerate(classes):
                name = self.class_names[c] if self.class_names and 0 <= c < len(self.class_names) else str(c)
                out[f"AP/{name}"] = _mean_valid(at_cap[:, :, k])
        return {k: (math.nan if v == -1.0 else v) for k, v in out.items()}


def coco_thresholds(start: float, stop: float, step: float) -> list[float]:
    """Evenly spaced thresholds from `start` to `stop` as pycocotools' `Params` builds them (float64 linspace)."""
    return np.linspace(start, stop, int(np.round((stop - start) / step)) + 1, endpoint=True).tolist()


def _with_crowds(t: dict[str, Tensor]) -> dict[str, Tensor]:
    """A target for torchmetrics: its boxes, then its ignore boxes flagged `iscrowd` (pycocotools ignores a
    detection that matches a crowd region: intersection over the detection's own area)."""
    boxes, labels = t["boxes"].detach().cpu().reshape(-1, 4), t["labels"].detach().cpu().reshape(-1).long()
    ignore = t.get("ignore_boxes")
    if ignore is None or ignore.numel() == 0:
        return {"boxes": boxes, "labels": labels}
    ignore = ignore.detach().cpu().reshape(-1, 4).to(boxes.dtype)
    crowd = torch.cat([torch.zeros(len(boxes), dtype=torch.long), torch.ones(len(ignore), dtype=torch.long)])
    ignore_labels = t["ignore_labels"].detach().cpu().reshape(-1).long()
    return {"boxes": torch.cat([boxes, ignore]), "labels": torch.cat([labels, ignore_labels]), "iscrowd": crowd}


def _mean_valid(precision: Tensor | None) -> float:
    """COCO's summary of a precision slice: the mean of its defined entries (> -1), -1 when there is none."""
    if precision is None:
        return -1.0
    valid = precision[precision > -1]
    return float(valid.double().mean()) if valid.numel() else -1.0


# ----------------------------------------------------------------------------------------------- classification


def single_label_metrics(scores: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """top-1, top-5 (when K > 5), macro-F1, balanced accuracy, per-class accuracy (recall) and confusion matrix.

    macro-F1 is sklearn's `f1_score(average="macro")`: over the classes present in the targets or predictions.
    """
    from sklearn.metrics import confusion_matrix, f1_score

    pred = scores.argmax(1).numpy()
    y = targets.numpy()
    labels = list(range(num_classes))
    cm = confusion_matrix(y, pred, labels=labels)
    support = cm.sum(1)
    per_class = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    out: dict[str, Any] = {
        "top1": float((pred == y).mean()),
        # sklearn's default: mean over the classes in the targets or the predictions, so a class predicted but
        # absent from the targets scores F1 = 0 instead of being dropped
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "balanced_acc": float(np.nanmean(per_class)),
        "per_class_acc": [None if np.isnan(v) else float(v) for v in per_class],
        "confusion": cm.tolist(),
    }
    if num_classes > 5:
        top5 = scores.topk(5, dim=1).indices.numpy()
        out["top5"] = float((top5 == y[:, None]).any(1).mean())
    return out


def multilabel_metrics(
    scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5, logits: bool | None = None
) -> dict[str, Any]:
    """mAP (macro and micro), F1 (micro, macro) at `threshold`, per-class AP.

    The macro means run over every class, as sklearn (`average_precision_score`, `f1_score(average="macro")`)
    and torchmetrics (`MultilabelAveragePrecision` / `MultilabelF1Score`, average="macro") do: a class with no
    positive in the split scores AP 0 and F1 0 (also when never predicted). Before, such classes were left out of
    both means, which raised them on small splits; `classes_without_positives` lists them.
    `logits`: True when `scores` are logits (the threshold applies to their sigmoid), False for probabilities.
    None guesses from the values (logits when any leaves [0, 1]); a caller that knows should say, since logits
    that all happen to lie in [0, 1] would be read as probabilities (a logit of 0.3 is a probability of 0.57).
    """
    from sklearn.metrics import average_precision_score, f1_score

    s = scores.float()
    if logits is None:
        logits = not (s.min() >= 0 and s.max() <= 1)
    prob = torch.sigmoid(s) if logits else s
    y = targets.numpy().astype(int)
    p = prob.numpy()
    has_pos = y.sum(0) > 0
    # AP of a class without positives: 0, as sklearn and torchmetrics (both warn; the value is set here directly)
    per_class = [float(average_precision_score(y[:, c], p[:, c])) if has_pos[c] else 0.0 for c in range(y.shape[1])]
    pred = (p >= threshold).astype(int)
    return {
        "mAP": float(np.mean(per_class)) if per_class else float("nan"),
        "mAP_micro": float(average_precision_score(y.ravel(), p.ravel())) if y.any() else float("nan"),
        "f1_micro": float(f1_score(y, pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)),
        "per_class_ap": per_class,
        "classes_without_positives": [int(c) for c in np.flatnonzero(~has_pos)],
    }


def selection_score(scores: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> float:
    """The score a probe's hyper-parameters are chosen by: mAP (multi-label) or top-1 accuracy."""
    if multilabel:
        return multilabel_metrics(scores, targets)["mAP"]
    return float((scores.argmax(1) == targets).float().mean())
