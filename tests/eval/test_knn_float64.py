"""kNN on features with a large common part (a random ViT's CLS tokens): cosines within 1e-8 of 1 must still be
told apart (float32 rounded them to ties, and the vote fell to training order)."""

from __future__ import annotations

import numpy as np
import torch

from geodino.eval.classification import knn_scores


def _clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes: a common vector of norm ~1 plus a class offset and noise of ~1e-4 (as float32 features)."""
    g = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.zeros((n, 8))
    x[:, 0] = 1.0
    x[:, 1] = np.where(y == 1, 1e-4, -1e-4)
    x[:, 2:] = g.normal(0, 2e-5, (n, 6))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def test_knn_separates_near_parallel_features_like_float64_numpy():
    xtr, ytr = _clusters(40, 0)
    xte, yte = _clusters(20, 1)
    # the same vote in float64 numpy: cosine, top-k, exp(sim / 0.07)
    a = xtr.double().numpy() / np.linalg.norm(xtr.double().numpy(), axis=1, keepdims=True)
    b = xte.double().numpy() / np.linalg.norm(xte.double().numpy(), axis=1, keepdims=True)
    sim = b @ a.T
    assert 1 - sim.min() < 1e-7  # below float32's resolution near 1
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :10]
    w = np.exp(np.take_along_axis(sim, idx, 1) / 0.07)
    ref = np.stack([(w * (ytr.numpy()[idx] == c)).sum(1) for c in (0, 1)], 1)
    assert (ref.argmax(1) == yte.numpy()).mean() == 1.0

    votes = knn_scores(xtr, ytr, xte, [10], num_classes=2)[10]  # float32 out, as before
    assert votes.dtype == torch.float32
    assert (votes.argmax(1) == yte).float().mean().item() == 1.0  # was 0.5: all ties, training order voted
    exact = knn_scores(xtr, ytr, xte, [10], num_classes=2, out_dtype=torch.float64)[10]  # what the probe takes
    np.testing.assert_allclose(exact.numpy(), ref, rtol=1e-9)
