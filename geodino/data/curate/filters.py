"""The per-tile filters of curation: the cloud screen and near-duplicates by cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["cloud_fraction", "near_duplicates", "rgb_index"]


def cloud_fraction(image: np.ndarray, valid: np.ndarray, rgb: Sequence[int], threshold: float) -> float:
    """Share of valid pixels where every RGB band has reflectance >= `threshold` (bright and white)."""
    bright = np.all(image[list(rgb)] >= threshold, axis=0) & valid
    return float(bright.sum() / max(int(valid.sum()), 1))


def rgb_index(sensor: Any, n_bands: int) -> list[int]:
    if sensor is not None and sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands):
        return [list(sensor.bands).index(b) for b in sensor.rgb_bands]
    return [0, 1, 2] if n_bands >= 3 else [0] * 3


def near_duplicates(emb: np.ndarray, threshold: float, block: int = 2048) -> np.ndarray:
    """Bool [N]: True where a tile's cosine similarity to an earlier *kept* tile is >= `threshold` (rows of
    `emb` L2-normalised). Exact search in blocks: faiss is not installed here (and its flat index is the same
    exact inner-product search); a torch matmul of each block against the kept set costs O(N·K·D), seconds for
    1e5 tiles, and needs no pair list (an ocean archive would give O(N²) pairs)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
    n = x.shape[0]
    dup = np.zeros(n, bool)
    kept = x[:0]
    for lo in range(0, n, block):
        b = x[lo : lo + block]
        hit = (
            (b @ kept.T).max(dim=1).values >= threshold if kept.shape[0] else torch.zeros(b.shape[0], dtype=torch.bool)
        )
        inner = b @ b.T
        keep_local: list[int] = []
        for i in range(b.shape[0]):  # within the block, in order: against the block's earlier kept rows
            if hit[i] or (keep_local and bool((inner[i, keep_local] >= threshold).any())):
                dup[lo + i] = True
            else:
                keep_local.append(i)
        kept = torch.cat([kept, b[keep_local]])
    return dup
