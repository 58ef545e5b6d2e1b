"""Set-ups shared by the attention-map tests of this folder."""

from __future__ import annotations

import numpy as np
import torch


def dino_mask(att: np.ndarray, mass: float) -> np.ndarray:
    """facebookresearch/dino visualize_attention.py's threshold: sort ascending, normalise, keep cumsum > 1 - mass
    (zeros included: no floor on the attention)."""
    a = torch.as_tensor(att, dtype=torch.float64).reshape(att.shape[0], -1)
    val, idx = torch.sort(a)
    keep = torch.cumsum(val / val.sum(1, keepdim=True), 1) > (1 - mass)
    return torch.gather(keep, 1, torch.argsort(idx)).reshape(att.shape).numpy()
