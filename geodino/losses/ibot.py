"""iBOT masked-patch loss with per-image weighting (DINOv2/v3 `forward_masked`).

Only the masked patches of the student's global crops go through the heads. Each masked patch is weighted by
1 / (masked patches of its crop), so every masked crop counts equally whatever its mask ratio, and the sum is
divided by the number of global crops in the batch (masked or not): loss = -Σ_m w_m Σ_k t_mk log softmax(s_m/τ)_k / N.
Teacher targets use Sinkhorn-Knopp with B = the masked-patch count all-reduced over the process group.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from geodino.losses.dino import PrototypeLoss
from geodino.losses.sinkhorn import sinkhorn_knopp

__all__ = ["IBOTPatchLoss", "masks_weight_from_masks"]


def masks_weight_from_masks(masks: Tensor) -> Tensor:
    """Per-masked-patch weights [M] (1 / masked count of its crop), in `masks.flatten()` order."""
    per_crop = 1.0 / masks.sum(-1).clamp(min=1).float()
    return per_crop.unsqueeze(-1).expand_as(masks)[masks]


class IBOTPatchLoss(PrototypeLoss):
    """Cross-entropy between teacher and student prototype distributions on masked patches.

    `forward(student_logits [M,K], teacher_probs [M,K], masks [N_crops, N_patches], masks_weight [M] | None)`.
    `teacher_targets(teacher_logits [M,K], temp, n_masked_patches)` gives the teacher probabilities.
    """

    kind = "ibot"

    @torch.no_grad()
    def teacher_targets(
        self,
        teacher_logits: Tensor,
        teacher_temp: float,
        n_masked_patches: int | Tensor | None = None,
        update_center: bool = True,
    ) -> Tensor:
        """Teacher probabilities for the masked patches; SK columns B = Σ_ranks n_masked_patches."""
        if self.mean_centering is not None:
            # DINOv2 v1 path: the centre is the mean over masked patches (per-rank mean, averaged over ranks).
            probs = F.softmax((teacher_logits.float() - self.mean_centering.center) / teacher_temp, dim=-1)
            if update_center and teacher_logits.shape[0] > 0:
                self.mean_centering.update(teacher_logits.float().mean(0, keepdim=True))
            return probs
        if n_masked_patches is None:
            n_masked_patches = teacher_logits.shape[0]
        return sinkhorn_knopp(teacher_logits, teacher_temp, self.sinkhorn_iterations, n_masked_patches, self.group)

    def forward(
        self,
        student_logits: Tensor,
        teacher_probs: Tensor,
        masks: Tensor,
        masks_weight: Tensor | None = None,
        n_masked_patches: int | None = None,
    ) -> Tensor:
        if masks_weight is None:
            masks_weight = masks_weight_from_masks(masks)
        ce = torch.sum(teacher_probs.float() * F.log_softmax(student_logits.float() / self.student_temp, dim=-1), -1)
        if n_masked_patches is not None:
            ce = ce[:n_masked_patches]
            masks_weight = masks_weight[:n_masked_patches]
        return -(ce * masks_weight.to(ce.dtype)).sum() / masks.shape[0]
