"""Curation's k-means gives the same clusters and picks whatever the thread count: scikit-learn summed each
thread's share of a centroid in float32 in the order the threads finished, so 1 and 2 threads gave centroids ~1e-7
apart on these points (and on 30000 noisy points other clusters and other picks). The fit is now float64 and the
centroids are re-summed in a fixed order."""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from geodino.data.curate.cluster import balanced_sample, hierarchical_kmeans


def _run(x: np.ndarray, threads: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            levels = hierarchical_kmeans(x, [16, 4], resamples=1, resample_size=20, seed=0)
            return levels, balanced_sample(x, levels, 300, seed=0)
    finally:
        torch.set_num_threads(before)


def test_one_and_two_threads_give_the_same_centroids_and_picks():
    x = np.random.default_rng(0).standard_normal((4000, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    (one, picks1), (two, picks2) = _run(x, 1), _run(x, 2)
    for a, b in zip(one, two):
        assert np.array_equal(a["assign"], b["assign"])
        assert np.array_equal(a["centroids"], b["centroids"]), np.abs(a["centroids"] - b["centroids"]).max()
    assert np.array_equal(picks1, picks2)


def test_centroids_are_the_means_of_their_members():
    x = np.random.default_rng(1).standard_normal((500, 6)).astype(np.float32)
    (level,) = hierarchical_kmeans(x, [7], seed=2)
    for c in range(7):
        members = x[level["assign"] == c].astype(np.float64)
        np.testing.assert_allclose(level["centroids"][c], members.mean(0), rtol=0, atol=1e-6)
