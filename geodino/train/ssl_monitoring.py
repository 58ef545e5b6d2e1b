"""The collapse and plateau statistics of an SSL step (`ssl.monitor`): computed on the device, read on the host in
one copy, and fed to the collapse check."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from geodino.train import monitors as mon
from geodino.train.host import host_floats


@torch.no_grad()
def plateau_stats(
    student: Any, t_cls: Tensor, t_logits: Tensor, s_logits: Tensor, t_masked_probs: Tensor
) -> dict[str, Tensor]:
    """What holds a run at ln K (docs/recipe.md): image spread of the teacher CLS, logit scales, iBOT target
    entropy, LayerScale size and prototype norms."""
    out = {
        "teacher_cls_spread": mon.image_spread(t_cls),
        "teacher_logit_std": mon.logit_std(t_logits),
        "student_logit_std": mon.logit_std(s_logits),
        "layerscale_gamma": mon.layerscale_gamma(student["backbone"]),
        "dino_prototype_norm": mon.prototype_norm(student["dino_head"]),
        "ibot_prototype_norm": mon.prototype_norm(student["ibot_head"]),
    }
    if t_masked_probs.shape[0]:
        out["ibot_teacher_entropy"] = mon.teacher_entropy(t_masked_probs)
    return out


@torch.no_grad()
def monitor_step(arch: Any, teacher: Mapping[str, Any], student: Mapping[str, Any], iteration: int) -> dict[str, float]:
    """The collapse and plateau statistics of this step, read on the host in one copy (one GPU synchronisation
    per check, not one per statistic), and the collapse check on them."""
    t_cls, t_probs, g_cls = teacher["cls"], teacher["cls_probs"], student["cls"]
    stats = {
        "teacher_entropy": mon.teacher_entropy(t_probs),
        "teacher_usage_entropy": mon.usage_entropy(t_probs),
        "student_teacher_kl": mon.student_teacher_kl(student["global_logits"], t_probs, arch.cfg.dino.student_temp),
        "teacher_feature_std": mon.feature_std(t_cls),
        "student_feature_std": mon.feature_std(g_cls),
        "cls_patch_cosine": mon.cls_patch_cosine(g_cls, student["patch"]),
    }
    s_logits = student["cls_logits"][0]
    stats.update(plateau_stats(arch.student, t_cls, teacher["cls_logits"], s_logits, teacher["masked_probs"]))
    values = host_floats(stats)
    warmup = arch.cfg.monitor.warmup_iters
    if arch.schedules is not None:
        from geodino.train.schedules import resolve_iters

        warmup = resolve_iters(warmup, arch.schedules.total_iters, "monitor.warmup_iters")
    if iteration < warmup:  # at init all images look alike by construction
        arch.collapse_monitor.bad_checks = 0
    else:
        arch.collapse_monitor.update(
            {**values, "n_prototypes": arch.cfg.dino.head_n_prototypes, "feature_dim": arch.embed_dim}, iteration
        )
    out = {f"monitor/{k}": v for k, v in values.items()}
    out["monitor/collapsed"] = float(arch.collapse_monitor.collapsed)
    out["monitor/max_entropy"] = math.log(arch.cfg.dino.head_n_prototypes)
    return out
