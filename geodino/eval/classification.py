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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from geodino.errors import ConfigError, InputError
from geodino.eval.datasets import DatasetConfig, ProbeDataset, build_dataset, check_classes
from geodino.eval.features import FeatureConfig, FeatureSet, extract_features
from geodino.io import atomic_path, make_dirs

OFFICIAL_LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]


@dataclass
class KNNConfig:
    enabled: bool = True
    ks: list[int] = field(default_factory=lambda: [10, 20, 100, 200])
    temperature: float = 0.07
    chunk_size: int = 1024  # test images per similarity block (memory bound: chunk x n_train floats)


@dataclass
class LinearConfig:
    enabled: bool = True
    lrs: list[float] = field(default_factory=lambda: list(OFFICIAL_LRS))
    weight_decays: list[float] = field(default_factory=lambda: [0.0, 1e-4])
    n_last_blocks: list[int] = field(default_factory=lambda: [1, 4])
    avgpool: list[bool] = field(default_factory=lambda: [False, True])
    epochs: int = 50
    min_iterations: int = 500  # small datasets still get enough SGD steps (epochs grow to reach this)
    batch_size: int = 256
    momentum: float = 0.9
    scale_lr_with_batch: bool = True  # lr * batch_size / 256, as official
    refit_on_trainval: bool = False  # retrain the chosen head on train + val before testing
    standardize: bool = False  # z-score inputs with train statistics (off = official; on helps non-DINO baselines)


@dataclass
class LogRegConfig:
    enabled: bool = False
    cs: list[float] = field(default_factory=lambda: [float(c) for c in np.logspace(-6, 5, 12)])
    max_iter: int = 1000
    standardize: bool = True  # z-score features (fit on train): L-BFGS converges in far fewer steps
    refit_on_trainval: bool = True


@dataclass
class ClassificationConfig:
    """One classification probe: a dataset, how to extract features, and which heads to fit."""

    data: DatasetConfig = field(default_factory=lambda: DatasetConfig(name="image_folder"))
    features: FeatureConfig = field(default_factory=FeatureConfig)
    knn: KNNConfig = field(default_factory=KNNConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    logreg: LogRegConfig = field(default_factory=LogRegConfig)
    eval_split: str = "test"  # split the chosen heads are reported on (test, or val when there is no test)
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
) -> dict[int, torch.Tensor]:
    """Weighted kNN votes [N_test, K] for each k, as DINO: cosine similarity, top-k neighbours, weight exp(sim/T).

    `train_y` is [N] class ids (votes sum one-hot labels) or [N, K] multi-hot (scores are the weighted mean of
    the neighbours' label vectors, a per-class probability for mAP).
    """
    if train_x.shape[0] == 0:
        raise InputError("kNN needs training features; the training split is empty")
    multilabel = train_y.dim() == 2
    tr = F.normalize(train_x.float(), dim=1)
    te = F.normalize(test_x.float(), dim=1)
    k_max = min(max(ks), tr.shape[0])
    y1h = train_y.float() if multilabel else F.one_hot(train_y.long(), num_classes).float()
    out: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for start in range(0, te.shape[0], chunk_size):
        sim = te[start : start + chunk_size] @ tr.T
        top_sim, top_idx = sim.topk(k_max, dim=1)  # sorted, largest first
        weights = (top_sim / temperature).exp()
        neigh = y1h[top_idx]  # [B, k_max, K]
        for k in ks:
            kk = min(k, k_max)
            votes = (weights[:, :kk, None] * neigh[:, :kk]).sum(1)
            if multilabel:
                votes = votes / weights[:, :kk].sum(1, keepdim=True)
            out[k].append(votes)
    return {k: torch.cat(v) for k, v in out.items()}


# -------------------------------------------------------------------------------------------------- linear


@dataclass
class LinearHead:
    """A trained linear head and the grid point that produced it."""

    weight: torch.Tensor  # [D, K]
    bias: torch.Tensor  # [K]
    lr: float
    weight_decay: float
    n_last_blocks: int
    avgpool: bool
    val_score: float = float("nan")
    shift: torch.Tensor | None = None  # input standardisation (train mean, std) when linear.standardize
    scale: torch.Tensor | None = None

    def inputs(self, feats: FeatureSet) -> torch.Tensor:
        x = feats.linear_input(self.n_last_blocks, self.avgpool)
        return x if self.shift is None else (x - self.shift) / self.scale

    def logits(self, feats: FeatureSet) -> torch.Tensor:
        return self.inputs(feats) @ self.weight + self.bias


def _standardizer(x: torch.Tensor, on: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if not on:
        return None, None
    return x.mean(0), x.std(0).clamp_min(1e-6)


def _schedule(n: int, cfg: LinearConfig) -> tuple[int, int, int]:
    """(batch size, steps per epoch, total steps): `epochs` passes, at least `min_iterations` steps."""
    bs = max(1, min(cfg.batch_size, n))
    spe = math.ceil(n / bs)
    return bs, spe, max(1, cfg.epochs * spe, cfg.min_iterations)


def _train_heads(
    x: torch.Tensor,
    y: torch.Tensor,
    lrs: torch.Tensor,
    wds: torch.Tensor,
    num_classes: int,
    cfg: LinearConfig,
    generator: torch.Generator,
    progress: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train H linear heads at once on x [N, D]; head h uses lr[h], wd[h]. Returns W [H, D, K], b [H, K].

    Written by hand rather than with torch.optim: per-head learning rates on slices of one batched weight let a
    single einsum serve the whole grid (torch.optim would need one tensor and one param group per head). The
    update is exactly torch's SGD: d = g + wd * w; buf = m * buf + d; w -= lr_t * buf, with a cosine lr_t.
    """
    n, d = x.shape
    h = lrs.numel()
    bs, steps_per_epoch, total = _schedule(n, cfg)
    # Small heads are bound by per-op overhead: extra threads only add synchronisation (15x slower measured on
    # 2 busy cores), so small problems run single-threaded.
    small = bs * d * num_classes * h < 200_000_000
    old_threads = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        return _sgd_loop(x, y, lrs, wds, num_classes, cfg, generator, progress, bs, steps_per_epoch, total)
    finally:
        torch.set_num_threads(old_threads)


def _sgd_loop(
    x: torch.Tensor,
    y: torch.Tensor,
    lrs: torch.Tensor,
    wds: torch.Tensor,
    num_classes: int,
    cfg: LinearConfig,
    generator: torch.Generator,
    progress: Any,
    bs: int,
    steps_per_epoch: int,
    total: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    n, d = x.shape
    h, k = lrs.numel(), num_classes
    multilabel = y.dim() == 2
    # Weights live as one [D, H*K] matrix so a step is two GEMMs for the whole grid; the gradient of the mean
    # cross-entropy (softmax - onehot) / B, or of the mean BCE (sigmoid - y) / (B*K), is written out directly.
    w = (torch.randn(h, d, k, generator=generator) * 0.01).permute(1, 0, 2).contiguous()  # N(0, 0.01) as official
    b = torch.zeros(h, k)
    bw, bb = torch.zeros_like(w), torch.zeros_like(b)
    scale = bs / 256 if cfg.scale_lr_with_batch else 1.0
    lr0 = (lrs * scale).view(1, h, 1)
    wd = wds.view(1, h, 1)
    step = 0
    while step < total:
        perm = torch.randperm(n, generator=generator)
        for s in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[s * bs : (s + 1) * bs]
            xb, yb = x[idx], y[idx]
            m = xb.shape[0]
            logits = (xb @ w.view(d, h * k)).view(m, h, k) + b
            if multilabel:
                grad = (torch.sigmoid(logits) - yb.float()[:, None, :]) / (m * k)
            else:
                grad = torch.softmax(logits, dim=-1)
                grad[torch.arange(m), :, yb] -= 1.0
                grad /= m
            gw = (xb.T @ grad.view(m, h * k)).view(d, h, k)
            gb = grad.sum(0)
            lr_t = lr0 * 0.5 * (1 + math.cos(math.pi * step / total))
            bw.mul_(cfg.momentum).add_(gw + wd * w)
            bb.mul_(cfg.momentum).add_(gb)
            w -= lr_t * bw
            b -= lr_t.view(h, 1) * bb
            step += 1
        if progress is not None:
            progress.update(1)
    return w.permute(1, 0, 2).contiguous(), b


def linear_probe(
    train: FeatureSet,
    val: FeatureSet,
    num_classes: int,
    cfg: LinearConfig,
    *,
    seed: int = 0,
    progress: bool = True,
) -> tuple[LinearHead, list[dict[str, float]]]:
    """Sweep (n_last_blocks, avgpool, lr, wd), train every head on `train`, pick the best on `val`.

    Returns the chosen head and one row per grid point (its validation score) for the report.
    """
    from tqdm.auto import tqdm

    if not cfg.lrs or not cfg.weight_decays or not cfg.n_last_blocks or not cfg.avgpool:
        raise ConfigError("linear.lrs, linear.weight_decays, linear.n_last_blocks and linear.avgpool must not be empty")
    n_layers = train.cls.shape[1]
    blocks = sorted({min(n, n_layers) for n in cfg.n_last_blocks})
    grid = [(lr, wd) for lr in cfg.lrs for wd in cfg.weight_decays]
    lrs = torch.tensor([g[0] for g in grid], dtype=torch.float32)
    wds = torch.tensor([g[1] for g in grid], dtype=torch.float32)
    multilabel = train.targets.dim() == 2
    rows: list[dict[str, float]] = []
    best: LinearHead | None = None
    groups = [(n, a) for n in blocks for a in cfg.avgpool]
    _, spe, total = _schedule(len(train), cfg)
    epochs = math.ceil(total / spe)
    bar = tqdm(total=len(groups) * epochs, desc="linear sweep", unit="epoch", disable=not progress, leave=False)
    for gi, (n_blocks, avgpool) in enumerate(groups):
        g = torch.Generator().manual_seed(seed * 1000 + gi)
        x = train.linear_input(n_blocks, avgpool)
        shift, scale = _standardizer(x, cfg.standardize)
        if shift is not None:
            x = (x - shift) / scale
        w, b = _train_heads(x, train.targets, lrs, wds, num_classes, cfg, g, bar)
        probe = LinearHead(w[0], b[0], 0.0, 0.0, n_blocks, bool(avgpool), shift=shift, scale=scale)
        xv = probe.inputs(val)
        logits = torch.einsum("nd,hdk->hnk", xv, w) + b[:, None]
        for hi, (lr, wd) in enumerate(grid):
            score = _selection_score(logits[hi], val.targets, multilabel)
            rows.append({"n_last_blocks": n_blocks, "avgpool": float(avgpool), "lr": lr, "wd": wd, "val": score})
            if best is None or score > best.val_score:
                best = LinearHead(w[hi], b[hi], lr, wd, n_blocks, bool(avgpool), score, shift, scale)
    bar.close()
    assert best is not None
    return best, rows


def refit_head(head: LinearHead, train: FeatureSet, num_classes: int, cfg: LinearConfig, seed: int) -> LinearHead:
    """Retrain one grid point on new training features (train + val), keeping its hyper-parameters."""
    g = torch.Generator().manual_seed(seed * 1000 + 999)
    x = train.linear_input(head.n_last_blocks, head.avgpool)
    shift, scale = _standardizer(x, cfg.standardize)
    if shift is not None:
        x = (x - shift) / scale
    one = torch.tensor([head.lr]), torch.tensor([head.weight_decay])
    w, b = _train_heads(x, train.targets, one[0], one[1], num_classes, cfg, g)
    return LinearHead(
        w[0], b[0], head.lr, head.weight_decay, head.n_last_blocks, head.avgpool, head.val_score, shift, scale
    )


def _selection_score(scores: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> float:
    if multilabel:
        return multilabel_metrics(scores, targets)["mAP"]
    return float((scores.argmax(1) == targets).float().mean())


def concat_features(a: FeatureSet, b: FeatureSet) -> FeatureSet:
    return FeatureSet(
        torch.cat([a.cls, b.cls]), torch.cat([a.patch_mean, b.patch_mean]), torch.cat([a.targets, b.targets]), a.layers
    )


# ------------------------------------------------------------------------------------------- logistic reg.


def logistic_regression(
    train: FeatureSet, val: FeatureSet, test: FeatureSet, cfg: LogRegConfig, *, seed: int = 0
) -> tuple[torch.Tensor, dict[str, float]]:
    """sklearn logistic regression on last-block CLS: C chosen on val, refit on train + val; returns test scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not cfg.cs:
        raise ConfigError("logreg.cs must list at least one C value")
    multilabel = train.targets.dim() == 2

    def fit(c: float, x: np.ndarray, y: np.ndarray) -> Any:
        clf: Any = LogisticRegression(C=c, max_iter=cfg.max_iter, random_state=seed)
        if multilabel:
            clf = OneVsRestClassifier(clf)
        steps = [StandardScaler(), clf] if cfg.standardize else [clf]
        return make_pipeline(*steps).fit(x, y)

    def scores(model: Any, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(model.predict_proba(x), dtype=np.float32))

    xt, yt = train.cls[:, -1].numpy(), train.targets.numpy()
    xv, yv = val.cls[:, -1].numpy(), val.targets.numpy()
    best_c, best_score = cfg.cs[0], -1.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at tiny C is expected and harmless for selection
        for c in cfg.cs:
            model = fit(c, xt, yt)
            sc = _selection_score(_full_proba(model, scores(model, xv), train, multilabel), val.targets, multilabel)
            if sc > best_score:
                best_c, best_score = c, sc
        if cfg.refit_on_trainval:
            model = fit(best_c, np.concatenate([xt, xv]), np.concatenate([yt, yv]))
            fitted_on = concat_features(train, val)
        else:
            model = fit(best_c, xt, yt)
            fitted_on = train
        test_scores = _full_proba(model, scores(model, test.cls[:, -1].numpy()), fitted_on, multilabel)
    return test_scores, {"C": float(best_c), "val": float(best_score)}


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


# ------------------------------------------------------------------------------------------------- metrics


def single_label_metrics(scores: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """top-1, top-5 (when K > 5), macro-F1, balanced accuracy, per-class accuracy (recall) and confusion matrix."""
    from sklearn.metrics import confusion_matrix, f1_score

    pred = scores.argmax(1).numpy()
    y = targets.numpy()
    labels = list(range(num_classes))
    cm = confusion_matrix(y, pred, labels=labels)
    support = cm.sum(1)
    per_class = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    out: dict[str, Any] = {
        "top1": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, labels=[c for c in labels if support[c] > 0], average="macro")),
        "balanced_acc": float(np.nanmean(per_class)),
        "per_class_acc": [None if np.isnan(v) else float(v) for v in per_class],
        "confusion": cm.tolist(),
    }
    if num_classes > 5:
        top5 = scores.topk(5, dim=1).indices.numpy()
        out["top5"] = float((top5 == y[:, None]).any(1).mean())
    return out


def multilabel_metrics(scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> dict[str, Any]:
    """mAP (macro over classes with a positive, and micro), F1 (micro, macro) at `threshold`, per-class AP.

    `scores` may be logits or probabilities: the threshold applies to sigmoid(logits) when values leave [0, 1].
    """
    from sklearn.metrics import average_precision_score, f1_score

    s = scores.float()
    prob = s if (s.min() >= 0 and s.max() <= 1) else torch.sigmoid(s)
    y = targets.numpy().astype(int)
    p = prob.numpy()
    has_pos = y.sum(0) > 0
    per_class = [float(average_precision_score(y[:, c], p[:, c])) if has_pos[c] else None for c in range(y.shape[1])]
    aps = [v for v in per_class if v is not None]
    pred = (p >= threshold).astype(int)
    return {
        "mAP": float(np.mean(aps)) if aps else float("nan"),
        "mAP_micro": float(average_precision_score(y.ravel(), p.ravel())) if y.any() else float("nan"),
        "f1_micro": float(f1_score(y, pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y[:, has_pos], pred[:, has_pos], average="macro", zero_division=0)),
        "per_class_ap": per_class,
    }


def plot_confusion(cm: list[list[int]], classes: list[str], path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (counts printed in cells when the matrix is small)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(classes)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------------- runner


def _check_targets(fs: FeatureSet, num_classes: int, ds: ProbeDataset) -> None:
    t = fs.targets
    if t.dim() == 1 and t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise InputError(
            f"{ds.name} ({ds.split}) holds label {int(t.max())} but has {num_classes} classes; fix the labels"
        )
    if t.dim() == 2 and t.shape[1] != num_classes:
        raise InputError(f"{ds.name} ({ds.split}) has {t.shape[1]} label columns but {num_classes} classes")


def run_classification(backbone: Any, cfg: ClassificationConfig, out_dir: str | Path) -> dict[str, float]:
    """Extract (or read cached) features of train/val/test, fit the enabled heads, write details and plots.

    Returns the metrics (kNN per k, linear, logistic regression), named `<head>_<metric>`, e.g. `knn_top1@k20`,
    `linear_top1`, `linear_macro_f1`, `logreg_mAP`. Writes `classification.json` (chosen hyper-parameters,
    per-class scores, confusion matrices, the sweep) and `confusion_<head>.png` to `out_dir`.
    """
    if cfg.eval_split not in ("test", "val"):
        raise ConfigError(f"eval_split={cfg.eval_split!r} is not valid; use test or val")
    out = Path(out_dir)
    make_dirs(out)
    torch.manual_seed(cfg.seed)
    train_ds = build_dataset(cfg.data, "train")
    val_ds = build_dataset(cfg.data, "val")
    test_ds = build_dataset(cfg.data, "test") if cfg.eval_split == "test" else val_ds
    for other in (val_ds, test_ds):
        check_classes(train_ds, other, cfg.data.num_classes)
    k = train_ds.num_classes
    multilabel = train_ds.task == "multilabel"
    cache_dir = cfg.features.cache_dir or None

    def feats(ds: ProbeDataset) -> FeatureSet:
        fs = extract_features(
            backbone, ds, cfg.features, cache_dir=cache_dir, desc=f"{ds.name}/{ds.split}", progress=cfg.progress
        )
        _check_targets(fs, k, ds)
        return fs

    ftr, fva = feats(train_ds), feats(val_ds)
    if not multilabel and ftr.targets.numel() and ftr.targets.unique().numel() < 2:
        only = train_ds.classes[int(ftr.targets[0])] if train_ds.classes else int(ftr.targets[0])
        raise InputError(
            f"every training sample of {train_ds.name} in {train_ds.root} is class {only!r}: a probe trained on one "
            "class scores 1.0 by construction; add samples of the other classes"
        )
    fte = fva if test_ds is val_ds else feats(test_ds)
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {
        "classes": train_ds.classes,
        "n_train": len(ftr),
        "n_val": len(fva),
        "n_eval": len(fte),
        "eval_split": cfg.eval_split,
        "multilabel": multilabel,
    }

    def score(name: str, s: torch.Tensor) -> None:
        if multilabel:
            m = multilabel_metrics(s, fte.targets)
            for key in ("mAP", "mAP_micro", "f1_micro", "f1_macro"):
                metrics[f"{name}_{key}"] = m[key]
        else:
            m = single_label_metrics(s, fte.targets, k)
            for key in ("top1", "top5", "macro_f1", "balanced_acc"):
                if key in m:
                    metrics[f"{name}_{key}"] = m[key]
            if cfg.plots:
                title = f"{name} on {train_ds.name} {cfg.eval_split}: top-1 {m['top1']:.3f}"
                plot_confusion(m["confusion"], train_ds.classes, out / f"confusion_{name}.png", title)
        details[name] = m

    if cfg.knn.enabled:
        ks = sorted(set(cfg.knn.ks))
        if not ks or min(ks) < 1:
            raise ConfigError(f"knn.ks={cfg.knn.ks} must list positive k values")
        votes = knn_scores(
            ftr.cls[:, -1],
            ftr.targets,
            fte.cls[:, -1],
            ks,
            num_classes=k,
            temperature=cfg.knn.temperature,
            chunk_size=cfg.knn.chunk_size,
        )
        for kk in ks:
            if multilabel:
                m = multilabel_metrics(votes[kk], fte.targets)
                metrics[f"knn_mAP@k{kk}"] = m["mAP"]
                metrics[f"knn_f1_micro@k{kk}"] = m["f1_micro"]
            else:
                pred = votes[kk].argmax(1)
                metrics[f"knn_top1@k{kk}"] = float((pred == fte.targets).float().mean())
        headline = 20 if 20 in ks else ks[0]
        score("knn", votes[headline])
        details["knn"]["k"] = headline

    if cfg.linear.enabled:
        head, rows = linear_probe(ftr, fva, k, cfg.linear, seed=cfg.seed, progress=cfg.progress)
        if cfg.linear.refit_on_trainval:
            head = refit_head(head, concat_features(ftr, fva), k, cfg.linear, cfg.seed)
        score("linear", head.logits(fte))
        details["linear"].update(
            lr=head.lr,
            weight_decay=head.weight_decay,
            n_last_blocks=head.n_last_blocks,
            avgpool=head.avgpool,
            val_score=head.val_score,
            sweep=rows,
        )

    if cfg.logreg.enabled:
        s, info = logistic_regression(ftr, fva, fte, cfg.logreg, seed=cfg.seed)
        score("logreg", s)
        details["logreg"].update(info)

    with atomic_path(out / "classification.json") as tmp:
        tmp.write_text(json.dumps(details, indent=1, default=float))
    return metrics
