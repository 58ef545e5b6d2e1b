"""Gram anchoring loss (DINOv3): MSE between the patch-similarity (Gram) matrices of student and Gram teacher.

Both sides are L2-normalised patch tokens (post-norm, pre-head, global crops). `img_level=True` compares one N×N
Gram matrix per image ([B,N,D] inputs); `img_level=False` flattens the local batch and compares one (B·N)² matrix
(or takes [M,D] selected tokens directly). Negative similarities can be clamped to 0 on both sides
(`remove_neg`) or on the teacher only (`remove_only_teacher_neg`, which is what the official code effectively does:
its student mask tests the already clamped teacher matrix). Mirrors `dinov3/loss/gram_loss.py`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from geodino.losses.float32 import float32_region

__all__ = ["GramLoss", "gram_matrix"]


def gram_matrix(feats: Tensor, normalize: bool = True, img_level: bool = True) -> Tensor:
    """[B,N,N] per image (img_level) or [B·N,B·N] over the batch, of (optionally L2-normalised) fp32 tokens.

    Float32 outside autocast, as the official loss (FSDP2 mixed precision, no autocast): a bf16-mixed step's
    autocast ran the product in bf16, whose rounding of each similarity (~4e-3 near 1) outweighs the student-teacher
    differences Gram anchoring measures (the loss of a close student came out ~3x its float32 value)."""
    with float32_region(feats.device.type):
        x = feats.float()
        if normalize:
            x = F.normalize(x, dim=-1)
        if not img_level and x.dim() == 3:
            x = x.flatten(0, 1)
        return x @ x.transpose(-1, -2)


class GramLoss(nn.Module):
    """`forward(student_feats, teacher_feats, img_level=None)` -> mean squared difference of Gram matrices."""

    def __init__(
        self,
        apply_norm: bool = True,
        img_level: bool = False,
        remove_neg: bool = False,
        remove_only_teacher_neg: bool = False,
    ) -> None:
        super().__init__()
        if remove_neg and remove_only_teacher_neg:
            raise ValueError("gram: choose either remove_neg or remove_only_teacher_neg, not both")
        self.apply_norm = apply_norm
        self.img_level = img_level
        self.remove_neg = remove_neg
        self.remove_only_teacher_neg = remove_only_teacher_neg

    def forward(self, student_feats: Tensor, teacher_feats: Tensor, img_level: bool | None = None) -> Tensor:
        img_level = self.img_level if img_level is None else img_level
        if img_level and (student_feats.dim() != 3 or teacher_feats.dim() != 3):
            raise ValueError("gram img_level=True needs [B, N, D] features for student and teacher")
        with torch.no_grad():
            target = gram_matrix(teacher_feats.detach(), self.apply_norm, img_level)
            if self.remove_neg or self.remove_only_teacher_neg:
                target.clamp_(min=0.0)
        student = gram_matrix(student_feats, self.apply_norm, img_level)
        if self.remove_neg:
            student = student.clamp(min=0.0)
        return F.mse_loss(student, target)
