"""The logistic-regression classification probe as DINOv3's `eval/log_regression.py`: its config and the sklearn
L-BFGS fit on last-block CLS tokens, C chosen on val and refit on train + val."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geodino.errors import ConfigError
from geodino.eval.features import FeatureSet
from geodino.eval.linear import concat_features
from geodino.eval.metrics import selection_score


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
