"""Sinkhorn-Knopp teacher targets (SwAV/DINOv2/DINOv3 centering) and the process-group helpers the losses share.

The teacher's prototype scores are turned into soft assignments whose prototype marginals are uniform (1/K each)
over the whole global batch: row and column sums are all-reduced over the process group, so every rank computes
the same normalisation as a single process holding the global batch. `group` lets distillation subgroups run their
own normalisation (the official code reads a global "process subgroup"; here it is an argument).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_", "dist_active", "group_rank", "group_world_size", "sinkhorn_knopp"]


def dist_active() -> bool:
    """True when torch.distributed is available and a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def group_world_size(group: dist.ProcessGroup | None = None) -> int:
    """Number of ranks in `group` (the default group when None); 1 without torch.distributed."""
    return dist.get_world_size(group) if dist_active() else 1


def group_rank(group: dist.ProcessGroup | None = None) -> int:
    """This process' rank inside `group`; 0 without torch.distributed."""
    return dist.get_rank(group) if dist_active() else 0


def all_reduce_(t: Tensor, group: dist.ProcessGroup | None = None, op: str = "sum") -> Tensor:
    """In-place all-reduce (sum or max) when torch.distributed is initialised; a no-op otherwise."""
    if dist_active() and group_world_size(group) > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM, group=group)
    return t


def _nonzero(s: Tensor) -> Tensor:
    """`s` with exact zeros replaced by 1 (their rows are all 0, so 0 / 1 = 0); any other value is untouched."""
    return torch.where(s == 0, torch.ones_like(s), s)


@torch.no_grad()
def sinkhorn_knopp(
    teacher_logits: Tensor,
    teacher_temp: float,
    n_iterations: int = 3,
    n_samples: int | Tensor | None = None,
    group: dist.ProcessGroup | None = None,
) -> Tensor:
    """Soft assignments [B_local, K] of teacher scores with uniform prototype marginals over the group's batch.

    Mirrors the official algorithm: Q = exp(t / temp)^T normalised to sum 1, then `n_iterations` of
    (rows -> 1/K with all-reduced row sums, columns -> 1/B), finally multiplied by B so that each sample's
    assignment sums to 1. `n_samples` is the global number of columns B: by default B_local x group size (DINO);
    iBOT passes the local masked-patch count, which is all-reduced here (patch counts differ across ranks).

    One deliberate change: the global maximum score (all-reduced) is subtracted before `exp`. A global constant
    cancels exactly in the first normalisation, so the result is the official one, without fp32 overflow when
    t / temp exceeds ~88. Row and column sums that are exactly 0 (a prototype or sample whose mass underflowed)
    are divided as 1, so they stay 0 where the official code gives NaN; every non-zero sum, subnormal ones
    included, is divided exactly as official.
    """
    logits = teacher_logits.float() / teacher_temp
    B: float | Tensor
    if n_samples is None:
        B = float(logits.shape[0] * group_world_size(group))
    else:
        # kept on the device: reading the count on the host would wait for the device every step (a GPU sync);
        # counts are exact in float32 up to 2**24, and a 0-dim float32 tensor divides exactly as the float would
        b = torch.as_tensor(n_samples, dtype=torch.float64, device=logits.device).reshape(1).clone()
        B = all_reduce_(b, group).to(torch.float32).reshape(())
    K = logits.shape[1]
    shift = logits.max() if logits.numel() else logits.new_zeros(())
    shift = all_reduce_(shift.detach().clone(), group, op="max")
    Q = torch.exp(logits - shift).t()  # K x B_local
    total = all_reduce_(Q.sum(), group)
    Q /= total
    for _ in range(n_iterations):
        rows = all_reduce_(Q.sum(dim=1, keepdim=True), group)
        Q /= _nonzero(rows)  # a prototype whose mass underflowed to 0 stays 0 instead of turning NaN
        Q /= K
        Q /= _nonzero(Q.sum(dim=0, keepdim=True))
        Q /= B
    Q *= B
    return Q.t()
