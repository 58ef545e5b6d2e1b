"""Scene classification probes on frozen features: kNN, linear (lr/wd sweep) and logistic regression.

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

import numpy as np
import torch
import torch.nn.functional as F

from geodino.errors import ConfigError, InputError
from geodino.eval.backbone_arg import probe_backbone
from geodino.eval.classification_predictions import (
    PREDICTIONS_FILE,
    clear_predictions,
    sample_ids,
    write_predictions,
)
from geodino.eval.config_arg import probe_config
from geodino.eval.data_splits import write_splits
from geodino.eval.datasets import DatasetConfig, ProbeDataset, build_dataset, check_classes
from geodino.eval.features import FeatureConfig, FeatureSet, extract_features
from geodino.eval.label_budget import active, budget_details, budget_indices, check_budget, subset_features
from geodino.eval.linear import LinearConfig, concat_features, linear_probe, refit_head
from geodino.eval.metrics import multilabel_metrics, selection_score, single_label_metrics
from geodino.eval.seeding import keeps_global_rng
from geodino.io import atomic_path, json_text, make_dirs


@dataclass
class KNNConfig:
    enabled: bool = True
    ks: list[int] = field(default_factory=lambda: [10, 20, 100, 200])
    temperature: float = 0.07
    chunk_size: int = 1024  # memory bound: a similarity block holds chunk x n_train float32s' worth (as float64)

    def __post_init__(self) -> None:  # 0 divided the similarities by zero, a negative one inverted the votes: both ran
        if not (np.isfinite(float(self.temperature)) and float(self.temperature) > 0):
            raise ConfigError(f"knn.temperature={self.temperature} must be a positive number, e.g. 0.07")
        if self.enabled and (not list(self.ks) or min(self.ks) < 1):  # was refused only after feature extraction
            raise ConfigError(f"knn.ks={list(self.ks)} must list positive k values, e.g. [10, 20]")
        if int(self.chunk_size) < 1:  # ran one test image per block, without a word
            raise ConfigError(f"knn.chunk_size={self.chunk_size} must be >= 1 (the memory bound, e.g. 1024)")


@dataclass
class LogRegConfig:
    enabled: bool = False
    # one C per decade over DINOv3's range; DINOv3's log_regression sweeps 45 values (10 ** linspace(-6, 5, 45))
    cs: list[float] = field(default_factory=lambda: [float(c) for c in np.logspace(-6, 5, 12)])
    max_iter: int = 1000
    standardize: bool = True  # z-score features (fit on train): L-BFGS converges in far fewer steps
    refit_on_trainval: bool = True
    # L-BFGS stopping tolerance; 0 = auto: sklearn's 1e-4 on standardised features, DINOv3's 1e-12 (with float64
    # features, as its train_dtype) when standardize is false. Raw CLS tokens can vary by ~1e-4 per dimension
    # around a large common part, and at tol 1e-4 L-BFGS then stops before its first step (chance scores).
    tol: float = 0.0

    def __post_init__(self) -> None:  # sklearn refused them with a traceback, after the features were extracted
        if not list(self.cs) or any(not (np.isfinite(float(c)) and float(c) > 0) for c in self.cs):
            raise ConfigError(f"logreg.cs={list(self.cs)} must list positive C values, e.g. [0.1, 1.0, 10.0]")
        if int(self.max_iter) < 1:
            raise ConfigError(f"logreg.max_iter={self.max_iter} must be >= 1 (L-BFGS iterations, e.g. 1000)")
        if not float(self.tol) >= 0:  # NaN too; was refused only after feature extraction
            raise ConfigError(f"logreg.tol={self.tol} must be >= 0 (0 = auto)")


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


# ----------------------------------------------------------------------------------------------------- kNN


@torch.no_grad()
def knn_scores(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    ks: list[int],
    *,
    num_classes: int,
    temperature: float = 0.07,
    chunk_size: int = 1024,
    out_dtype: torch.dtype = torch.float32,
) -> dict[int, torch.Tensor]:
    """Weighted kNN votes [N_test, K] for each k, as DINO: cosine similarity, top-k neighbours, weight exp(sim/T).

    `train_y` is [N] class ids (votes sum one-hot labels) or [N, K] multi-hot (scores are the weighted mean of
    the neighbours' label vectors, a per-class probability for mAP).

    Similarities, weights and votes are computed in float64, returned as `out_dtype` (the probe takes float64):
    features sharing a large common part (a random or barely trained ViT's CLS tokens) have cosines within 1e-8
    of 1, which float32 (eps 6e-8) rounds to ties, and kNN then voted by training order (top-1 0.20 where float64
    neighbours give 0.60, 5 EuroSAT classes); float32 votes of such neighbours can tie again. Blocks hold
    `chunk_size // 2` test images, the memory of `chunk_size` float32 rows.
    """
    if train_x.shape[0] == 0:
        raise InputError("kNN needs training features; the training split is empty")
    multilabel = train_y.dim() == 2
    tr = F.normalize(train_x.double(), dim=1)
    te = F.normalize(test_x.double(), dim=1)
    k_max = min(max(ks), tr.shape[0])
    y1h = train_y.double() if multilabel else F.one_hot(train_y.long(), num_classes).double()
    out: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    rows = max(1, chunk_size // 2)
    for start in range(0, te.shape[0], rows):
        sim = te[start : start + rows] @ tr.T
        top_sim, top_idx = nearest(sim, k_max)  # sorted, largest first, ties by training index
        weights = (top_sim / temperature).exp()
        neigh = y1h[top_idx]  # [B, k_max, K]
        for k in ks:
            kk = min(k, k_max)
            votes = (weights[:, :kk, None] * neigh[:, :kk]).sum(1)
            if multilabel:
                votes = votes / weights[:, :kk].sum(1, keepdim=True)
            out[k].append(votes)
    return {k: torch.cat(v).to(out_dtype) for k, v in out.items()}


def nearest(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest similarities per row and their columns, largest first; equal similarities are taken and
    ordered by lower column (training index). So the k nearest are always the first k of the k' > k nearest: a
    kNN score at k does not depend on the other k values asked for. (`topk` alone picks among ties as it likes,
    and near-constant features, such as a random ViT's CLS tokens, tie by the dozen.)"""
    bound = sim.topk(k, dim=1).values[:, -1:]  # the k-th largest value of each row
    above, tied = sim > bound, sim == bound
    need = k - above.sum(1, keepdim=True)  # how many of the tied columns to take
    chosen = above | tied
    rows = (tied.sum(1, keepdim=True) > need).squeeze(1).nonzero().squeeze(1)  # rows with more ties than room
    if rows.numel():
        t = tied[rows]
        chosen[rows] = above[rows] | (t & (t.cumsum(1) <= need[rows]))
    idx = chosen.nonzero()[:, 1].view(sim.shape[0], k)  # ascending columns per row
    vals = sim.gather(1, idx)
    order = vals.argsort(dim=1, descending=True, stable=True)
    return vals.gather(1, order), idx.gather(1, order)


# ------------------------------------------------------------------------------------------- logistic reg.


def logistic_regression(
    train: FeatureSet, val: FeatureSet, test: FeatureSet, cfg: LogRegConfig, *, seed: int = 0
) -> tuple[torch.Tensor, dict[str, float]]:
    """sklearn logistic regression on last-block CLS: C chosen on val, refit on train + val; returns test scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    multilabel = train.targets.dim() == 2
    tol = cfg.tol or (1e-4 if cfg.standardize else 1e-12)
    dtype = np.float32 if cfg.standardize else np.float64  # unstandardised: DINOv3's float64 fit
    stalled: list[float] = []  # C values whose fit stopped before its first L-BFGS step

    def fit(c: float, x: np.ndarray, y: np.ndarray) -> Any:
        clf: Any = LogisticRegression(C=c, max_iter=cfg.max_iter, tol=tol, random_state=seed)
        if multilabel:
            clf = OneVsRestClassifier(clf)
        steps = [StandardScaler(), clf] if cfg.standardize else [clf]
        model = make_pipeline(*steps).fit(x, y)
        if _iterations(model[-1]) == 0:
            stalled.append(c)
        return model

    def scores(model: Any, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(model.predict_proba(x.astype(dtype)), dtype=np.float32))

    xt, yt = train.cls[:, -1].numpy().astype(dtype), train.targets.numpy()
    xv, yv = val.cls[:, -1].numpy().astype(dtype), val.targets.numpy()
    best_c, best_score = cfg.cs[0], -1.0
    import warnings

    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: L-BFGS on a few thousand rows makes many small BLAS calls, whose threads spin and
    # fight any other load (on a 2-core machine under load, 5 fits on 600 x 384 took 5.6-7.0 s with the default 2
    # threads against 0.19-0.26 s with 1); the per-call work is too small for threads to help.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")  # ConvergenceWarning at tiny C is expected and harmless for selection
        for c in cfg.cs:
            model = fit(c, xt, yt)
            sc = selection_score(_full_proba(model, scores(model, xv), train, multilabel), val.targets, multilabel)
            if sc > best_score:
                best_c, best_score = c, sc
        if cfg.refit_on_trainval:
            model = fit(best_c, np.concatenate([xt, xv]), np.concatenate([yt, yv]))
            fitted_on = concat_features(train, val)
        else:
            model = fit(best_c, xt, yt)
            fitted_on = train
        test_scores = _full_proba(model, scores(model, test.cls[:, -1].numpy()), fitted_on, multilabel)
    if stalled:
        warnings.warn(
            f"logreg: L-BFGS stopped before its first step (tol={tol:g}) for C={', '.join(f'{c:.3g}' for c in stalled)}"
            ": those fits are the initial all-zero model; lower logreg.tol or set logreg.standardize=true",
            stacklevel=2,
        )
    return test_scores, {"C": float(best_c), "val": float(best_score), "tol": tol}


def _iterations(clf: Any) -> int:
    """The L-BFGS iterations of a fitted LogisticRegression (the most over a one-vs-rest ensemble); -1 where none
    ran (one-vs-rest fits a constant, without iterations, for a label that is never or always present)."""
    if hasattr(clf, "estimators_"):
        return max((_iterations(e) for e in clf.estimators_), default=-1)
    return int(np.max(clf.n_iter_)) if hasattr(clf, "n_iter_") else -1


def _full_proba(model: Any, proba: torch.Tensor, fitted_on: FeatureSet, multilabel: bool) -> torch.Tensor:
    """sklearn drops classes absent from the training labels; put its columns back at their class index."""
    if multilabel:
        return proba
    classes = model.classes_ if hasattr(model, "classes_") else model[-1].classes_
    k = int(fitted_on.targets.max()) + 1
    k = max(k, int(max(classes)) + 1)
    full = torch.zeros(proba.shape[0], k)
    full[:, torch.as_tensor(classes, dtype=torch.long)] = proba
    return full


# ------------------------------------------------------------------------------------------------- runner


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
        rows = budget_indices(ftr.targets, cfg.train_fraction, cfg.train_per_class, cfg.seed, train_ds.classes)
        budget = budget_details(ftr.targets, rows, cfg.train_fraction, cfg.train_per_class, cfg.seed, train_ds.classes)
        ftr, train_ds = subset_features(ftr, rows), train_ds.subset(rows)
    fva = feats(val_ds)
    fte = fva if test_ds is val_ds else feats(test_ds)
    report = _Report(cfg, train_ds, fte, out, counts={"n_train": len(ftr), "n_val": len(fva), "n_eval": len(fte)})
    report.details["input_scaling"] = input_scaling(train_ds, val_ds, test_ds)
    # Reported on val (eval_split=val), a head refit on train + val would be scored on its own training images:
    # the refit is then skipped (the head chosen on val and trained on train is reported, as documented).
    refit_linear, refit_logreg = _refits(cfg, evaluates_val=test_ds is val_ds, budget=budget is not None)
    if cfg.knn.enabled:
        _knn_heads(ftr, fte, k, cfg.knn, report)
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


class _Report:
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


def _knn_heads(ftr: FeatureSet, fte: FeatureSet, k: int, cfg: KNNConfig, report: _Report) -> None:
    """kNN at every k of the config (top-1 or mAP per k); the full report for k = 20 (or the smallest k).

    A k above the number of training images would vote with all of them and be labelled with a k it never used:
    such k values are skipped with one warning (when every k is too large, k = the number of training images is
    used and named as such), so each `@k<k>` row holds what that k gives."""
    ks = sorted(set(cfg.ks))  # non-empty and positive (KNNConfig)
    n_bank = int(ftr.cls.shape[0])
    too_big = [kk for kk in ks if kk > n_bank]
    if too_big and n_bank > 0:
        import warnings

        ks = [kk for kk in ks if kk <= n_bank] or [n_bank]
        warnings.warn(
            f"kNN: k={', '.join(map(str, too_big))} {'is' if len(too_big) == 1 else 'are'} more than the {n_bank} "
            f"training images of {report.train_ds.name}; skipped, reporting k={', '.join(map(str, ks))} "
            "(knn.ks sets the k values)",
            stacklevel=2,
        )
    votes = knn_scores(
        ftr.cls[:, -1],
        ftr.targets,
        fte.cls[:, -1],
        ks,
        num_classes=k,
        temperature=cfg.temperature,
        chunk_size=cfg.chunk_size,
        out_dtype=torch.float64,  # near-equal votes stay apart for the argmax
    )
    for kk in ks:
        if report.multilabel:
            m = multilabel_metrics(votes[kk], fte.targets, logits=False)
            report.metrics[f"knn_mAP@k{kk}"] = m["mAP"]
            report.metrics[f"knn_f1_micro@k{kk}"] = m["f1_micro"]
        else:
            pred = votes[kk].argmax(1)
            report.metrics[f"knn_top1@k{kk}"] = float((pred == fte.targets).float().mean())
    headline = 20 if 20 in ks else ks[0]
    report.score("knn", votes[headline])
    report.details["knn"]["k"] = headline
    report.details["knn"]["skipped_ks"] = too_big  # larger than the training set
