"""The near-duplicate search holds no similarity block larger than its byte budget, whatever the kept set's size,
and keeps exactly the tiles the unchunked search keeps (the earlier tile in archive order; cosine >= threshold;
duplicates caught across block boundaries)."""

from __future__ import annotations

import numpy as np
import torch

from geodino.data.curate import dedup


def _unchunked(emb: np.ndarray, threshold: float) -> np.ndarray:
    """The greedy reference: a tile is a duplicate when its cosine to any earlier kept tile is >= threshold."""
    dup = np.zeros(len(emb), bool)
    kept: list[int] = []
    for i in range(len(emb)):
        if kept and float((emb[kept] @ emb[i]).max()) >= threshold:
            dup[i] = True
        else:
            kept.append(i)
    return dup


def _planted(n: int = 900, d: int = 16, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    pairs = [(0, 899), (5, 6), (100, 640), (333, 334), (10, 500), (500, 700)]  # (500, 700): 500 is itself a dup
    for a, b in pairs:
        x[b] = x[a] + 0.01 * rng.standard_normal(d).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, pairs


def test_dedup_stays_within_the_byte_budget_and_matches_the_unchunked_search(monkeypatch):
    x, _ = _planted()
    want = _unchunked(x, 0.95)
    assert want[[899, 6, 640, 334, 500, 700]].all() and not want[[0, 5, 100, 333, 10]].any()
    budget = 4 * 64 * 20  # bytes: a 64 x 20 float32 block at most
    monkeypatch.setattr(dedup, "MAX_DEDUP_BYTES", budget, raising=False)
    shapes: list[tuple[int, ...]] = []
    real_matmul, real_op = torch.matmul, torch.Tensor.__matmul__

    def spy_matmul(a, b, *args, **kw):
        out = real_matmul(a, b, *args, **kw)
        shapes.append(tuple(out.shape))
        return out

    def spy_op(a, b):
        out = real_op(a, b)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch, "matmul", spy_matmul)
    monkeypatch.setattr(torch.Tensor, "__matmul__", spy_op)
    got = dedup.near_duplicates(x, 0.95, block=128)
    monkeypatch.undo()
    np.testing.assert_array_equal(got, want)
    assert shapes, "no similarity block was computed"
    largest = max(4 * int(np.prod(s)) for s in shapes)
    assert largest <= budget, f"a {largest}-byte similarity block under a {budget}-byte budget"
    # the default budget gives the same result (one column chunk), and so does an explicit one
    np.testing.assert_array_equal(dedup.near_duplicates(x, 0.95), want)
    np.testing.assert_array_equal(dedup.near_duplicates(x, 0.95, block=7, max_bytes=4 * 7 * 3), want)


def test_dedup_threshold_is_inclusive_across_chunks():
    """A pair at exactly the threshold is a duplicate, also when the earlier tile sits in another column chunk."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[3], x[250] = 0.0, 0.0
    x[3, 0] = 1.0
    x[250, 0], x[250, 1] = 0.96, 0.28  # cosine exactly float32(0.96) in any summation order
    s = float(np.float32(0.96))
    got = dedup.near_duplicates(x, s, block=16, max_bytes=4 * 16 * 5)
    np.testing.assert_array_equal(got, _unchunked(x, s))
    assert got[250]
