"""DINO loss on CLS tokens: student log-softmax (temperature 0.1) against teacher targets, cross-view pairs.

Teacher targets come from Sinkhorn-Knopp (DINOv2/v3 default) or from DINO v1 mean centering with momentum
(`centering="centering"`), selected with `dino.centering` in the recipe. Mirrors `dinov3/loss/dino_clstoken_loss.py`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from geodino.losses.float32 import float32_region
from geodino.losses.sinkhorn import all_reduce_, group_world_size, sinkhorn_knopp

__all__ = ["CENTERINGS", "DINOLoss", "MeanCentering"]

CENTERINGS = ("sinkhorn_knopp", "centering")


class MeanCentering(nn.Module):
    """DINO v1 centering: softmax((t - c) / temp), then c <- m·c + (1 - m)·mean_batch(t) (all-reduced mean).

    The centre used at iteration i holds the batches up to i-1, as in the official (asynchronous) update.
    `center` is a buffer, so it is saved in checkpoints and a resumed run continues with the same centre.
    """

    center: Tensor  # registered buffer (declared: nn.Module's __getattr__ is typed Tensor | Module)

    def __init__(self, out_dim: int, momentum: float = 0.9, group: dist.ProcessGroup | None = None) -> None:
        super().__init__()
        self.momentum = float(momentum)
        self.group = group
        self.register_buffer("center", torch.zeros(1, out_dim))

    @torch.no_grad()
    def forward(self, teacher_logits: Tensor, teacher_temp: float, update: bool = True) -> Tensor:
        t = teacher_logits.float()
        probs = F.softmax((t - self.center) / teacher_temp, dim=-1)
        if update:
            self.update(t)
        return probs

    @torch.no_grad()
    def update(self, teacher_logits: Tensor) -> None:
        """Momentum update with the batch mean over all ranks of `group` (rows of [N, K])."""
        t = teacher_logits.float().reshape(-1, self.center.shape[-1])
        batch_sum = all_reduce_(t.sum(dim=0, keepdim=True), self.group)
        batch_mean = batch_sum / (t.shape[0] * group_world_size(self.group))
        self.center.mul_(self.momentum).add_(batch_mean * (1.0 - self.momentum))


class PrototypeLoss(nn.Module):
    """What the DINO and iBOT losses share: the prototype count, the student temperature and the teacher's
    centering (Sinkhorn-Knopp, or the running mean of `MeanCentering`)."""

    kind = "prototype"  # named in the error for an unknown centering

    def __init__(
        self,
        out_dim: int,
        student_temp: float = 0.1,
        centering: str = "sinkhorn_knopp",
        center_momentum: float = 0.9,
        sinkhorn_iterations: int = 3,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        if centering not in CENTERINGS:
            raise ValueError(f"{self.kind} centering {centering!r} is not one of {CENTERINGS}")
        self.out_dim = int(out_dim)
        self.student_temp = float(student_temp)
        self.centering = centering
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.group = group
        self.mean_centering = MeanCentering(out_dim, center_momentum, group) if centering == "centering" else None


class DINOLoss(PrototypeLoss):
    """Cross-entropy between teacher probabilities and student log-softmax, averaged over (pairs, images).

    `forward(student_logits [S,B,K], teacher_probs [T,B,K], ignore_diagonal)` returns
    -Σ_{s,t,b} p_t,b · log softmax(z_s,b / τ_s) / (#pairs · B). With `ignore_diagonal` the pairs s == t (the same
    global view seen by student and teacher) are dropped, leaving the cross-view global term of DINOv2/v3.
    `teacher_targets(logits [N,K], temp)` builds the teacher probabilities with the configured centering.
    """

    kind = "dino"

    @torch.no_grad()
    def teacher_targets(self, teacher_logits: Tensor, teacher_temp: float, update_center: bool = True) -> Tensor:
        """Teacher probabilities [N, K] from the teacher head's scores [N, K] (all teacher crops of the batch)."""
        if self.mean_centering is not None:
            return self.mean_centering(teacher_logits, teacher_temp, update=update_center)
        return sinkhorn_knopp(teacher_logits, teacher_temp, self.sinkhorn_iterations, group=self.group)

    def forward(self, student_logits: Tensor, teacher_probs: Tensor, ignore_diagonal: bool = False) -> Tensor:
        S, B, _ = student_logits.shape
        T = teacher_probs.shape[0]
        # float32 outside autocast, as the official loss computes it (FSDP2 mixed precision, no autocast): the
        # einsum is a batched matmul, which a bf16-mixed step's autocast ran in bf16 (the loss ~ ln K rounded to
        # 1/16, the teacher targets to 3 digits in its gradient)
        with float32_region(student_logits.device.type):
            log_p = F.log_softmax(student_logits.float() / self.student_temp, dim=-1)
            if not ignore_diagonal:
                return -torch.einsum("sbk,tbk->", log_p, teacher_probs.float()) / (B * S * T)
            pair = -torch.einsum("sbk,tbk->st", log_p, teacher_probs.float())
            n_diag = min(S, T)
            pair = torch.diagonal_scatter(pair, pair.new_zeros(n_diag))
            return pair.sum() / (B * S * T - B * n_diag)
