"""Scene classification probes on frozen features: kNN, linear (lr/wd sweep) and logistic regression. This
module runs a probe (`run_classification`); the heads live in `knn.py`, `linear.py` and `logreg.py`, what a run
reports in `classification_report.py` (their configs and `knn_scores` stay importable from here).

The protocols follow the official code (see docs/probing.md):

- kNN as DINO's `eval_knn.py`: L2-normalised CLS tokens, cosine similarity, the k nearest training images each
  vote for their class with weight exp(sim / T), T = 0.07, k in {10, 20, 100, 200}.
- Linear as DINOv2/v3 `eval/linear.py`: the input is the CLS of the last n blocks (n in {1, 4}), optionally
  concatenated with the average-pooled patch tokens of the last block; SGD with momentum 0.9 and a cosine
  schedule; a grid of learning rates (the official 13, 1e-5 ... 0.1) times weight decays; every head of the grid
  trains at once on the cached features and the best on the validation split is reported on the test split.
- Logistic regression as DINOv3 `eval/log_regression.py`: sklearn L-BFGS on CLS tokens, C swept on a log grid,
  selected on validation, refit on train + val.
- Multi-label (BigEarthNet): kNN scores are the weighted mean of the neighbours' label vectors; linear heads
  train with binary cross-entropy; metrics are mAP (macro and micro) and F1 at 0.5.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geodino.errors import ConfigError, InputError
from geodino.eval.backbone_arg import probe_backbone
from geodino.eval.classification_predictions import (
    PREDICTIONS_FILE,
    clear_predictions,
    sample_ids,
    write_predictions,
)
from geodino.eval.classification_report import ClassificationReport
from geodino.eval.config_arg import probe_config
from geodino.eval.data_splits import write_splits
from geodino.eval.datasets import DatasetConfig, ProbeDataset, build_dataset, check_classes
from geodino.eval.features import FeatureConfig, FeatureSet, extract_features
from geodino.eval.knn import KNNConfig, knn_heads, knn_scores, nearest
from geodino.eval.label_budget import active, budget_details, budget_indices, check_budget, subset_features
from geodino.eval.linear import LinearConfig, concat_features, linear_probe, refit_head
from geodino.eval.logreg import LogRegConfig, logistic_regression
from geodino.eval.seeding import keeps_global_rng
from geodino.io import atomic_path, json_text, make_dirs

__all__ = [
    "ClassificationConfig",
    "KNNConfig",
    "LogRegConfig",
    "input_scaling",
    "knn_scores",
    "logistic_regression",
    "nearest",
    "run_classification",
]


@dataclass
class ClassificationConfig:
    """One classification probe: a dataset, how to extract features, and which heads to fit."""

    data: DatasetConfig = field(default_factory=lambda: DatasetConfig(name="image_folder"))
    features: FeatureConfig = field(default_factory=FeatureConfig)
    knn: KNNConfig = field(default_factory=KNNConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    logreg: LogRegConfig = field(default_factory=LogRegConfig)
    eval_split: str = "test"  # split the chosen heads are reported on (test, or val when there is no test)
    # label budget (eval/label_budget.py): the share of training labels kept, stratified per class and nested
    # across fractions (1 = all), or a number of training images per class (0 = off); val and test stay whole
    train_fraction: float = 1.0
    train_per_class: int = 0
    seed: int = 0
    plots: bool = True
    progress: bool = True


def _check_targets(fs: FeatureSet, num_classes: int, ds: ProbeDataset) -> None:
    t = fs.targets
    if t.dim() == 1 and t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise InputError(
            f"{ds.name} ({ds.split}) holds label {int(t.max())} but has {num_classes} classes; fix the labels"
        )
    if t.dim() == 2 and t.shape[1] != num_classes:
        raise InputError(f"{ds.name} ({ds.split}) has {t.shape[1]} label columns but {num_classes} classes")


@keeps_global_rng
def run_classification(backbone: Any, cfg: ClassificationConfig, out_dir: str | Path) -> dict[str, float]:
    """Extract (or read cached) features of train/val/test, fit the enabled heads, write details and plots.

    Returns the metrics (kNN per k, linear, logistic regression), named `<head>_<metric>`, e.g. `knn_top1@k20`,
    `linear_top1`, `linear_macro_f1`, `logreg_mAP`. Writes `classification.json` (chosen hyper-parameters,
    per-class scores, confusion matrices, the sweep) and `confusion_<head>.png` to `out_dir`.
    """
    cfg = probe_config(cfg, ClassificationConfig, "run_classification")
    if cfg.eval_split not in ("test", "val"):
        raise ConfigError(f"eval_split={cfg.eval_split!r} is not valid; use test or val")
    backbone = probe_backbone(backbone)  # a spec string is loaded as embed_raster loads it
    out = Path(out_dir)
    make_dirs(out)
    clear_predictions(out)  # an earlier run's must not outlive a rerun that fails or writes none
    torch.manual_seed(cfg.seed)
    train_ds = build_dataset(cfg.data, "train", backbone=backbone)  # image files: the backbone's recorded DN scale
    val_ds = build_dataset(cfg.data, "val", backbone=backbone)
    test_ds = build_dataset(cfg.data, "test", backbone=backbone) if cfg.eval_split == "test" else val_ds
    for other in (val_ds, test_ds):
        check_classes(train_ds, other, cfg.data.num_classes)
    k = train_ds.num_classes

    def feats(ds: ProbeDataset) -> FeatureSet:
        fs = extract_features(
            backbone,
            ds,
            cfg.features,
            cache_dir=cfg.features.cache_dir or None,
            desc=f"{ds.name}/{ds.split}",
            progress=cfg.progress,
        )
        _check_targets(fs, k, ds)
        return fs

    check_budget(cfg.train_fraction, cfg.train_per_class)  # a suite names tasks.<name>. (runner.parse_tasks)
    ftr = feats(train_ds)  # the full training split: one cache entry for every label budget
    if train_ds.task != "multilabel":
        _check_two_classes(ftr, train_ds)
    budget = None
    if active(cfg.train_fraction, cfg.train_per_class):  # subsampled after extraction, train only; a budget that
        # does not fit the data (train_per_class above a class's size) stops before val and test are extracted
        kept = budget_indices(ftr.targets, cfg.train_fraction, cfg.train_per_class, cfg.seed, train_ds.classes)
        budget = budget_details(ftr.targets, kept, cfg.train_fraction, cfg.train_per_class, cfg.seed, train_ds.classes)
        ftr, train_ds = subset_features(ftr, kept), train_ds.subset(kept)
    fva = feats(val_ds)
    fte = fva if test_ds is val_ds else feats(test_ds)
    report = ClassificationReport(
        cfg, train_ds, fte, out, counts={"n_train": len(ftr), "n_val": len(fva), "n_eval": len(fte)}
    )
    report.details["input_scaling"] = input_scaling(train_ds, val_ds, test_ds)
    # Reported on val (eval_split=val), a head refit on train + val would be scored on its own training images:
    # the refit is then skipped (the head chosen on val and trained on train is reported, as documented).
    refit_linear, refit_logreg = _refits(cfg, evaluates_val=test_ds is val_ds, budget=budget is not None)
    if cfg.knn.enabled:
        knn_heads(ftr, fte, k, cfg.knn, report)
    if cfg.linear.enabled:
        head, rows = linear_probe(ftr, fva, k, cfg.linear, seed=cfg.seed, progress=cfg.progress)
        if refit_linear:
            head = refit_head(head, concat_features(ftr, fva), k, cfg.linear, cfg.seed)
        report.score("linear", head.logits(fte), logits=True)
        report.details["linear"].update(
            lr=head.lr,
            weight_decay=head.weight_decay,
            n_last_blocks=head.n_last_blocks,
            avgpool=head.avgpool,
            val_score=head.val_score,
            refit_on_trainval=refit_linear,
            sweep=rows,
        )
    if cfg.logreg.enabled:
        logreg_cfg = dataclasses.replace(cfg.logreg, refit_on_trainval=refit_logreg)
        s, info = logistic_regression(ftr, fva, fte, logreg_cfg, seed=cfg.seed)
        report.score("logreg", s)
        report.details["logreg"].update(info, refit_on_trainval=refit_logreg)
    if budget is not None:  # info rows of results.json/results.md (INFO_METRICS), details in classification.json
        report.details["label_budget"] = budget
        report.metrics.update(train_fraction=budget["kept_fraction"], n_train=float(budget["n_train"]))
    with atomic_path(out / "classification.json") as tmp:
        tmp.write_text(json_text(report.details, indent=1, default=float))
    if report.preds:  # per-image predictions, for paired (McNemar) comparisons of backbones
        write_predictions(
            out / PREDICTIONS_FILE,
            sample_ids(test_ds.sample_files(), len(fte)),
            fte.targets,
            report.preds,
            train_ds.classes,
        )
    write_splits(out / "splits.json", train_ds, val_ds, test_ds)
    return report.metrics


def _refits(cfg: ClassificationConfig, evaluates_val: bool, budget: bool = False) -> tuple[bool, bool]:
    """(linear, logreg): whether each enabled head is refit on train + val before it is scored. Never when the
    scored split is val itself, nor under a label budget (the whole val split's labels would join the budgeted
    training labels: a 1 % EuroSAT head would train on 162 + 5400 images); a warning for each reason names the
    heads (both with eval_split=val: the val-scored number stays flagged as optimistic)."""
    linear = cfg.linear.enabled and cfg.linear.refit_on_trainval
    logreg = cfg.logreg.enabled and cfg.logreg.refit_on_trainval
    if budget and (linear or logreg):
        import warnings

        heads = " and ".join(h for h, on in (("linear", linear), ("logreg", logreg)) if on)
        warnings.warn(
            f"classification: a label budget (train_fraction/train_per_class) is set, so {heads} "
            f"{'is' if ' and ' not in heads else 'are'} not refit on train + val (that would train on every "
            "validation label too); the head chosen on val and trained on the budgeted training images is reported",
            stacklevel=3,
        )
        if not evaluates_val:
            return False, False
    if evaluates_val and (linear or logreg):
        import warnings

        heads = " and ".join(h for h, on in (("linear", linear), ("logreg", logreg)) if on)
        warnings.warn(
            f"classification: eval_split=val, so {heads} {'is' if ' and ' not in heads else 'are'} not refit on "
            "train + val (it would be scored on its own training images); the head chosen on val is reported on "
            "val, an optimistic number: give the data a test split for an unbiased one",
            stacklevel=3,
        )
        return False, False
    chosen = [h for h, on in (("linear", cfg.linear.enabled), ("logreg", cfg.logreg.enabled)) if on]
    if evaluates_val and chosen:  # no refit asked: still chosen on the split it is scored on (said nothing)
        import warnings

        warnings.warn(
            f"classification: eval_split=val, so {' and '.join(chosen)} {'is' if len(chosen) == 1 else 'are'} "
            "chosen and scored on val, an optimistic number: give the data a test split for an unbiased one",
            stacklevel=3,
        )
    return linear, logreg


def input_scaling(*datasets: ProbeDataset) -> str:
    """How the splits' image files became reflectance (one line; printed to stderr for generic image files, whose
    rule depends on the data and the backbone; after the features, so a failed run prints only its error), or the
    adapter's fixed scale."""
    rules = list(dict.fromkeys(ds.scaling for ds in datasets if ds.scaling))
    if not rules:
        return f"the {datasets[0].name} adapter's own scale (sensor {datasets[0].sensor or 'of the dataset'})"
    line = "; ".join(rules)
    print(f"classification: input scaling {line}", file=sys.stderr)
    return line


def _check_two_classes(ftr: FeatureSet, ds: ProbeDataset) -> None:
    """A single-label probe trained on one class scores 1.0 by construction: refuse it."""
    if ftr.targets.numel() and ftr.targets.unique().numel() < 2:
        only = ds.classes[int(ftr.targets[0])] if ds.classes else int(ftr.targets[0])
        raise InputError(
            f"every training sample of {ds.name} in {ds.root} is class {only!r}: a probe trained on one "
            "class scores 1.0 by construction; add samples of the other classes"
        )
