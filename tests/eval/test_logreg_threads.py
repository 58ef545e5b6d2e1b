"""The logistic-regression probe fits with one BLAS/OpenMP thread.

L-BFGS on a few thousand rows makes many small BLAS calls; with the default thread count their threads spin and
fight other load: on a 2-core machine under load, 5 fits on 600 x 384 features took 5.6-7.0 s with 2 threads
against 0.19-0.26 s with 1 (measured for this change). The test checks the limit, not a time.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

from geodino.eval.classification import LogRegConfig, logistic_regression
from geodino.eval.features import FeatureSet


def _split(n: int, seed: int) -> FeatureSet:
    g = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = g.standard_normal((n, 16)) + 2.0 * np.eye(16)[y]
    cls = torch.from_numpy(x.astype(np.float32))[:, None]
    return FeatureSet(cls=cls, patch_mean=cls, targets=torch.from_numpy(y).long(), layers=[0])


def test_every_fit_runs_with_one_thread(monkeypatch):
    seen: list[int] = []
    fit = LogisticRegression.fit

    def counting_fit(self, *args, **kwargs):
        seen.append(max((p["num_threads"] for p in threadpool_info()), default=1))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", counting_fit)
    with threadpool_limits(limits=2):  # the caller's setting (2 threads), which the probe must narrow to 1
        s, _ = logistic_regression(
            _split(60, 0), _split(30, 1), _split(30, 2), LogRegConfig(enabled=True, cs=[0.1, 1.0])
        )
        outside = max(p["num_threads"] for p in threadpool_info())
    assert len(seen) == 3  # two C values on train, then the refit on train + val
    assert seen == [1, 1, 1]
    assert outside == 2  # the caller's thread count is restored after the fits
    assert float((s.argmax(1) == _split(30, 2).targets).float().mean()) > 0.8
