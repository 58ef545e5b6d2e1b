"""Near-duplicate tiles by cosine similarity of their embeddings (a blocked exact search)."""

from __future__ import annotations

import numpy as np

__all__ = ["near_duplicates"]


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
