"""Hierarchical k-means resampling in bounded memory: the distances go over row blocks (||x||^2 - 2 x.c + ||c||^2)
instead of a dense [N, K, D] array, give the same clusters as the dense computation, and are never skipped."""

from __future__ import annotations

import tracemalloc

import numpy as np

from geodino.data.curate import cluster
from geodino.data.curate.cluster import hierarchical_kmeans


def _dense_reference(x: np.ndarray, clusters: list[int], resamples: int, resample_size: int, seed: int) -> list:
    """The former dense computation ([N, K, D] differences), the reference the chunked one must match."""
    levels = []
    items = np.asarray(x, dtype=np.float32)
    for li, k in enumerate(clusters):
        cent, assign = cluster._kmeans(items, k, seed + li)
        for r in range(resamples):
            d = ((items[:, None, :] - cent[None]) ** 2).sum(-1)
            pick = []
            for c in range(cent.shape[0]):
                members = np.flatnonzero(assign == c)
                pick.extend(members[np.argsort(d[members, c])[:resample_size]])
            cent, _ = cluster._kmeans(items[np.asarray(pick)], cent.shape[0], seed + 1000 * (r + 1) + li)
            assign = ((items[:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)
        levels.append({"centroids": cent, "assign": assign})
        items = cent
    return levels


def _points(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_chunked_resampling_equals_the_dense_computation():
    x = _points(400, 16)
    want = _dense_reference(x, [20, 5], resamples=2, resample_size=6, seed=3)
    # 8 * 2 * 20 * 7 bytes: blocks of 7 rows at level 1, so the rows go over ~58 blocks
    for max_bytes in (8 * 2 * 20 * 7, 2**30):
        got = hierarchical_kmeans(x, [20, 5], resamples=2, resample_size=6, seed=3, max_bytes=max_bytes)
        assert len(got) == 2
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g["assign"], w["assign"])
            np.testing.assert_array_equal(g["centroids"], w["centroids"])
    # resampling changed something (the check above is not plain k-means twice)
    plain = hierarchical_kmeans(x, [20, 5], seed=3)
    assert not np.array_equal(plain[0]["centroids"], want[0]["centroids"])


def test_nearest_centroid_over_blocks_is_the_dense_argmin():
    rng = np.random.default_rng(1)
    x, c = rng.standard_normal((1000, 8)).astype(np.float32), rng.standard_normal((37, 8)).astype(np.float32)
    dense = ((x[:, None, :].astype(np.float64) - c[None]) ** 2).sum(-1).argmin(1)
    for max_bytes in (1, 8 * 2 * 37 * 10, 2**30):  # one row per block, 10 rows, everything at once
        np.testing.assert_array_equal(cluster.nearest_centroid(x, c, max_bytes=max_bytes), dense)


def test_resampling_memory_does_not_grow_with_dimension():
    """N=2000, K=50, D=256: the dense [N, K, D] float32 array alone was 102 MB; now the peak stays near the data."""
    x = _points(2000, 256)
    tracemalloc.start()
    try:
        hierarchical_kmeans(x, [50], resamples=1, resample_size=5, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MB"


def test_resampling_is_not_skipped_for_many_points_times_clusters(monkeypatch):
    """N K = 5e7 (the former dense guard's limit) still resamples: k-means is re-fitted once per step."""
    calls: list[int] = []

    def fake_kmeans(items: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(items.shape[0])
        k = min(int(k), items.shape[0])
        cent = items[np.random.default_rng(seed).choice(items.shape[0], k, replace=False)].copy()
        assign = np.concatenate(
            [((items[i : i + 500, None, :] - cent[None]) ** 2).sum(-1).argmin(1) for i in range(0, len(items), 500)]
        )
        return cent, assign

    monkeypatch.setattr(cluster, "_kmeans", fake_kmeans)
    x = np.random.default_rng(0).standard_normal((10_000, 2)).astype(np.float32)
    levels = hierarchical_kmeans(x, [5000], resamples=2, resample_size=2, seed=0)
    assert calls[0] == 10_000 and len(calls) == 3  # the fit, then one re-fit per resampling step
    assert calls[1] <= 10_000 and calls[2] <= 10_000  # on the (two) closest items of each centroid
    assert levels[0]["assign"].shape == (10_000,) and levels[0]["centroids"].shape == (5000, 2)
