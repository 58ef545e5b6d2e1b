"""KoLeo regulariser (Kozachenko-Leonenko entropy estimate; Sablayrolles et al. 2018) on CLS features.

-mean log ||x_i - nn(x_i)|| over L2-normalised features: pushes each sample away from its nearest neighbour,
spreading the batch over the sphere. In the recipe it runs on the student's post-norm, pre-head CLS token of each
global crop separately, averaged over crops, then ×n_global ×0.1. Computed in fp32 outside autocast, as official.

`KoLeoLossDistributed` all-gathers the features (with gradients) and uses as neighbour set the group of
`group_size` consecutive samples of the global batch holding this rank's samples (the DINOv3 high-resolution
stage uses 16). With a single group equal to the whole local batch it equals `KoLeoLoss`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from geodino.losses.float32 import float32_region
from geodino.losses.sinkhorn import group_rank, group_world_size

__all__ = ["KoLeoLoss", "KoLeoLossDistributed", "groups_tile"]


def _autocast_off(device_type: str) -> Any:
    return float32_region(device_type)


def groups_tile(local_batch: int, world: int, group_size: int | None) -> bool:
    """Whether KoLeo groups of `group_size` tile batches of `local_batch` on `world` processes: a group lies inside
    one process's batch, or spans whole batches of several processes and divides the global batch (None: the whole
    global batch, always). `KoLeoLossDistributed` needs it; configs check it before a run writes anything."""
    if group_size is None:
        return True
    size, local = int(group_size), int(local_batch)
    return (size <= local and local % size == 0) or (size % local == 0 and (local * int(world)) % size == 0)


class KoLeoLoss(nn.Module):
    """KoLeo over the local batch [B, D]; the nearest neighbour is found by maximum inner product."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        with _autocast_off(x.device.type):
            x = F.normalize(x.float(), p=2, dim=-1, eps=self.eps)
            with torch.no_grad():
                dots = x @ x.t()
                dots.fill_diagonal_(-1.0)
                nn_idx = dots.argmax(dim=1)
            dist_ = F.pairwise_distance(x, x[nn_idx], p=2, eps=self.eps)
            return -torch.log(dist_ + self.eps).mean()


class KoLeoLossDistributed(nn.Module):
    """KoLeo with neighbours searched among a group of `group_size` samples of the all-gathered batch.

    `group_size=None` uses the whole global batch. As official, `group_size` may be a multiple of the local batch
    dividing the global batch (features are all-gathered); geodino also accepts a divisor of the local batch (the
    groups then lie inside each rank's batch, e.g. groups of 16 on one GPU holding 64 images). `topk` neighbours
    per sample are averaged. `group` is the process group whose ranks are gathered (default group if None).
    """

    def __init__(
        self,
        topk: int = 1,
        group_size: int | None = None,
        eps: float = 1e-8,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        self.topk = int(topk)
        self.group_size = group_size
        self.eps = float(eps)
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        with _autocast_off(x.device.type):
            x = F.normalize(x.float(), p=2, dim=-1, eps=self.eps)
            world, rank = group_world_size(self.group), group_rank(self.group)
            local_b, dim = x.shape
            global_b = local_b * world
            size = self.group_size if self.group_size is not None else global_b
            if size <= local_b and local_b % size == 0:
                # Every group lies inside this rank's batch (always the case on one process): no gather needed.
                return self._grouped(x.view(local_b // size, size, dim))
            if size % local_b != 0:
                raise ValueError(f"KoLeo group size {size} must be a multiple or divisor of the local batch {local_b}")
            if global_b % size != 0:
                raise ValueError(f"global batch size {global_b} must be divisible by the KoLeo group size {size}")
            from torch.distributed.nn.functional import all_gather

            all_x = torch.cat(all_gather(x, group=self.group), dim=0)  # autograd-aware: neighbours get gradients
            ranks_per_group = size // local_b
            members = all_x.view(global_b // size, size, dim)[rank // ranks_per_group]
            with torch.no_grad():
                dots = x @ members.t()
                offset = (rank % ranks_per_group) * local_b
                own = torch.arange(local_b, device=x.device)  # made where `dots` is: host indices waited for the GPU
                dots[own, offset + own] = -1.0
                idx = dots.topk(self.topk, dim=1).indices
            xs = x.unsqueeze(1).expand(-1, self.topk, -1).reshape(-1, dim)
            dist_ = F.pairwise_distance(xs, members[idx.reshape(-1)], eps=self.eps)
            return -torch.log(dist_ + self.eps).mean()

    def _grouped(self, members: Tensor) -> Tensor:
        """KoLeo inside each group of [G, size, D] (topk neighbours each)."""
        g, size, dim = members.shape
        with torch.no_grad():
            dots = torch.einsum("gid,gjd->gij", members, members)
            dots.diagonal(dim1=1, dim2=2).fill_(-1.0)
            idx = dots.topk(self.topk, dim=-1).indices  # [G, size, k]
        nbrs = torch.gather(members, 1, idx.reshape(g, size * self.topk, 1).expand(-1, -1, dim))
        xs = members.unsqueeze(2).expand(-1, -1, self.topk, -1).reshape(g, size * self.topk, dim)
        dist_ = F.pairwise_distance(xs.reshape(-1, dim), nbrs.reshape(-1, dim), eps=self.eps)
        return -torch.log(dist_ + self.eps).mean()
