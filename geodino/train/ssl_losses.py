"""The loss of one SSL step: DINO (local and global), KoLeo, iBOT and Gram terms weighted with the official term
scales (official `compute_losses`), from the teacher's targets and the student's logits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from geodino.train.ssl_gram import gram_term
from geodino.train.ssl_inputs import SSLInputs

if TYPE_CHECKING:
    from geodino.train.ssl import SSLMetaArch


def compute_losses(
    arch: SSLMetaArch,
    x: SSLInputs,
    teacher: Mapping[str, Tensor],
    student: Mapping[str, Any],
    vals: Mapping[str, float],
) -> tuple[Tensor, dict[str, Any]]:
    """DINO (local and global), KoLeo, iBOT and Gram losses of `arch` with the official term scales; returns
    (total, logs)."""
    cfg = arch.cfg
    n_global, n_local, B = x.n_global, x.n_local, x.batch_size
    logs: dict[str, Any] = {}
    g_terms = n_global * (n_global - 1) if cfg.dino.global_ignore_diagonal else n_global**2
    l_terms = n_global * n_local
    total_terms = g_terms + l_terms
    t_cls_probs = teacher["cls_probs"]
    total = x.global_crops.new_zeros((), dtype=torch.float32)
    if n_local:
        s_local = student["cls_logits"][1].unflatten(0, (n_local, B))
        dino_local = arch.dino_loss(s_local, t_cls_probs)
        total = total + cfg.dino.loss_weight * (l_terms / total_terms) * vals["dino_local_weight"] * dino_local
        logs["dino_local_loss"] = dino_local.detach()
    if g_terms:
        ignore = cfg.dino.global_ignore_diagonal
        dino_global = arch.dino_loss(student["global_logits"], t_cls_probs, ignore_diagonal=ignore)
        total = total + cfg.dino.loss_weight * (g_terms / total_terms) * dino_global
        logs["dino_global_loss"] = dino_global.detach()
    g_cls_crops = student["cls"].unflatten(0, (n_global, B))
    koleo = sum(arch.koleo_loss(g_cls_crops[c]) for c in range(n_global)) / n_global
    total = total + cfg.koleo.loss_weight * n_global * koleo
    logs["koleo_loss"] = koleo.detach()
    masked = x.mask_indices.shape[0]
    ibot = arch.ibot_loss(student["masked_logits"], teacher["masked_probs"], x.masks, x.masks_weight, masked)
    total = total + cfg.ibot.loss_weight * ibot
    logs["ibot_loss"] = ibot.detach()
    if arch.gram_loss is not None:
        logs["gram_weight"] = float(vals["gram_weight"])
        if vals["gram_weight"] != 0.0:
            gram = gram_term(arch, x.batch, student["patch"], teacher["patch"], x.masks, x.grid)
            total = total + vals["gram_weight"] * gram
            logs["gram_loss"] = gram.detach()
    logs["dino_local_weight"] = float(vals["dino_local_weight"])
    logs["teacher_temp"] = float(vals["teacher_temp"])
    return total, logs
