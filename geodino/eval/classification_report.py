"""What one classification probe run reports: each head's metrics (`<head>_<metric>`), the details written to
classification.json, the single-label predictions and the confusion plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from geodino.eval.metrics import multilabel_metrics, single_label_metrics

if TYPE_CHECKING:
    from geodino.eval.classification import ClassificationConfig
    from geodino.eval.datasets import ProbeDataset
    from geodino.eval.features import FeatureSet


class ClassificationReport:
    """The metrics (`<head>_<metric>`) and details (classification.json) of one run, and its confusion plots."""

    def __init__(
        self, cfg: ClassificationConfig, train_ds: ProbeDataset, evaluated: FeatureSet, out: Path, counts: dict
    ):
        self.cfg, self.train_ds, self.targets, self.out = cfg, train_ds, evaluated.targets, out
        self.multilabel = train_ds.task == "multilabel"
        self.metrics: dict[str, float] = {}
        self.preds: dict[str, torch.Tensor] = {}  # single-label heads' predicted classes (predictions.csv)
        self.details: dict[str, Any] = {
            "classes": train_ds.classes,
            **counts,
            "eval_split": cfg.eval_split,
            "multilabel": self.multilabel,
        }

    def score(self, name: str, s: torch.Tensor, logits: bool = False) -> None:
        """Score one head's outputs on the evaluated split (`logits`: the linear head's; kNN votes and logistic
        regression give probabilities)."""
        if self.multilabel:
            m = multilabel_metrics(s, self.targets, logits=logits)
            keys: tuple[str, ...] = ("mAP", "mAP_micro", "f1_micro", "f1_macro")
        else:
            m = single_label_metrics(s, self.targets, self.train_ds.num_classes)
            self.preds[name] = s.argmax(1)
            keys = ("top1", "top5", "macro_f1", "balanced_acc")
            if self.cfg.plots:
                from geodino.eval.plots import plot_confusion

                title = f"{name} on {self.train_ds.name} {self.cfg.eval_split}: top-1 {m['top1']:.3f}"
                plot_confusion(m["confusion"], self.train_ds.classes, self.out / f"confusion_{name}.png", title)
        self.metrics.update({f"{name}_{key}": m[key] for key in keys if key in m})
        self.details[name] = m
