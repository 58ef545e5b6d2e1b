"""Hierarchical k-means (DINOv2/v3 curation, Vo et al. 2024) and balanced sampling over the cluster tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.errors import ConfigError

__all__ = [
    "balanced_sample",
    "hierarchical_kmeans",
    "nearest_centroid",
    "per_level_sizes",
    "point_labels",
    "water_fill",
]


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn k-means of `x` (seeded), fit in float64, centroids the means of their final members.

    Why: scikit-learn sums each thread's share of a centroid in the order the threads finish, so in float32 the
    same embeddings and seed gave other clusters and other picks with 1 and 2 threads (30000 x 16 points, 32
    clusters: 295 vs 300 iterations, centroids 0.1 apart). In float64 those sums differ by ~1e-15 and the labels
    agree; the centroids are then re-summed in a fixed order (members sorted by index) so they agree bit for bit.
    """
    from sklearn.cluster import KMeans

    k = max(1, min(int(k), x.shape[0]))
    x64 = np.asarray(x, dtype=np.float64)
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x64)
    labels = km.labels_.astype(np.int64)
    cent = np.asarray(km.cluster_centers_, dtype=np.float64).copy()
    order = np.argsort(labels, kind="stable")
    present, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    sums = np.add.reduceat(x64[order], starts, axis=0)  # sequential per cluster: no thread-dependent order
    cent[present] = sums / counts[:, None]  # an empty cluster (none in practice) keeps scikit-learn's centroid
    return cent.astype(np.float32), labels


MAX_DISTANCE_BYTES = 256 * 2**20
"""Memory bound of one block of point-to-centroid distances (float64) in the resampling step."""


def nearest_centroid(x: np.ndarray, cent: np.ndarray, *, max_bytes: int = MAX_DISTANCE_BYTES) -> np.ndarray:
    """Index of the nearest centroid of every row of `x`, from ||x||^2 - 2 x.c + ||c||^2 (float64) computed over
    blocks of rows whose [rows, K] distance block stays within `max_bytes`, so N x K (x D) is never held at once
    (as facebookresearch/ssl-data-curation does under its memory limit)."""
    x = np.asarray(x)
    c = np.asarray(cent, dtype=np.float64)
    c2 = (c * c).sum(-1)
    rows = max(1, int(max_bytes) // max(1, 8 * 2 * c.shape[0]))  # the product and the distances: two [rows, K]
    out = np.empty(x.shape[0], np.int64)
    for lo in range(0, x.shape[0], rows):
        xb = x[lo : lo + rows].astype(np.float64)
        d = (xb * xb).sum(-1)[:, None] - 2.0 * (xb @ c.T) + c2[None]
        out[lo : lo + rows] = d.argmin(1)
    return out


def per_level_sizes(resample_size: int | Sequence[int], levels: int) -> list[int | None]:
    """The resampling sample size of each of `levels` levels: one int for all, or a list of one per level. A size
    <= 1 means no resampling at that level (None), as in ssl-data-curation (re-fitting on one point per centroid
    only moves each centroid onto a point). A list of another length is refused in one line."""
    if isinstance(resample_size, (int, np.integer)) and not isinstance(resample_size, bool):
        resample_size = [int(resample_size)] * levels
    elif isinstance(resample_size, (bool, str)) or not isinstance(resample_size, (Sequence, np.ndarray)):
        # a text "10" was read as the sizes [1, 0] (no resampling at either level), a bool or float failed in iter
        raise ConfigError(
            f"--resample-size {resample_size!r} (resample_size= in Python): give an integer, or a list of integers "
            "with one per level"
        )
    sizes = [int(v) for v in resample_size]
    if len(sizes) != levels:
        raise ConfigError(
            f"--resample-size {' '.join(map(str, sizes))} (resample_size= in Python): give one size for every level or "
            "one per level "
            f"({levels} for --clusters of {levels} levels), not {len(sizes)}"
        )
    return [v if v > 1 else None for v in sizes]


def hierarchical_kmeans(
    x: np.ndarray,
    clusters: Sequence[int],
    *,
    resamples: int = 0,
    resample_size: int | Sequence[int] = 10,
    seed: int = 0,
    max_bytes: int = MAX_DISTANCE_BYTES,
) -> list[dict[str, np.ndarray]]:
    """Levels finest first: level 1 clusters `x`, level l clusters the centroids of level l-1. Each level holds
    `centroids` [K_l, D] and `assign` (the level-(l-1) item -> level-l cluster; points for level 1). A resampling
    step re-fits the level's k-means on the `resample_size` items closest to each centroid, then reassigns all.
    `resample_size` is one size for every level, or a list of one size per level (finest first; as
    ssl-data-curation's per-level sample sizes) where a size <= 1 skips resampling at that level.

    Memory stays O(N D + K D + `max_bytes`) at any N, K, D: the items closest to a centroid are ranked by the
    distance to their own centroid (O(N D)), and the reassignment goes over blocks of rows (`nearest_centroid`);
    a dense [N, K, D] difference array took 61 GB for `--clusters 20000 2000 200` and was skipped without a word
    past N K = 5e7."""
    sizes = per_level_sizes(resample_size, len(clusters))
    levels = []
    items = np.asarray(x, dtype=np.float32)
    for li, k in enumerate(clusters):
        cent, assign = _kmeans(items, k, seed + li)
        for r in range(resamples if sizes[li] is not None else 0):
            own = ((items - cent[assign]) ** 2).sum(-1)  # each item's squared distance to its own centroid
            pick: list[Any] = []
            for c in range(cent.shape[0]):
                members = np.flatnonzero(assign == c)
                pick.extend(members[np.argsort(own[members])[: sizes[li]]])
            cent, _ = _kmeans(items[np.asarray(pick)], cent.shape[0], seed + 1000 * (r + 1) + li)
            assign = nearest_centroid(items, cent, max_bytes=max_bytes)
        levels.append({"centroids": cent, "assign": assign})
        items = cent
    return levels


def point_labels(levels: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Each point's cluster at every level (finest first)."""
    labels = [levels[0]["assign"]]
    for lv in levels[1:]:
        labels.append(lv["assign"][labels[-1]])
    return labels


def water_fill(sizes: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Per-cluster counts summing to min(target, sum(sizes)): min(x, size) for the largest x that fits, then one
    more for randomly chosen clusters larger than x until the target is met (DINOv2/v3 balanced sampling)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if target >= sizes.sum():
        return sizes.copy()
    lo, hi = 0, int(sizes.max())
    while lo < hi:  # largest x with sum(min(x, sizes)) <= target
        mid = (lo + hi + 1) // 2
        if np.minimum(mid, sizes).sum() <= target:
            lo = mid
        else:
            hi = mid - 1
    out = np.minimum(lo, sizes)
    rest = int(target - out.sum())
    if rest:
        bigger = np.flatnonzero(sizes > lo)
        out[rng.choice(bigger, rest, replace=False)] += 1
    return out


def balanced_sample(
    emb: np.ndarray, levels: list[dict[str, np.ndarray]], size: int, *, strategy: str = "random", seed: int = 0
) -> np.ndarray:
    """Indices of `size` points sampled top-down over the cluster tree with `water_fill` at every level."""
    rng = np.random.default_rng(seed)
    labels = point_labels(levels)
    top = len(levels) - 1

    def take(level: int, cluster: int, budget: int) -> list[np.ndarray]:
        if budget <= 0:
            return []
        if level == 0:
            members = np.flatnonzero(labels[0] == cluster)
            if strategy == "closest":
                d = ((emb[members] - levels[0]["centroids"][cluster]) ** 2).sum(-1)
                return [members[np.argsort(d, kind="stable")[:budget]]]
            return [rng.choice(members, budget, replace=False)]
        children = np.flatnonzero(levels[level]["assign"] == cluster)
        child_sizes = np.array([(labels[level - 1] == c).sum() for c in children])
        counts = water_fill(child_sizes, budget, rng)
        return [a for c, k in zip(children, counts) for a in take(level - 1, int(c), int(k))]

    roots = np.arange(levels[top]["centroids"].shape[0])
    root_sizes = np.array([(labels[top] == c).sum() for c in roots])
    counts = water_fill(root_sizes, size, rng)
    picked = [a for c, k in zip(roots, counts) for a in take(top, int(c), int(k))]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
