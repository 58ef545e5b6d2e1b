"""Collapse diagnostics for DINO-style training, and the NaN/Inf guard.

The two classic DINO collapses (Caron et al. 2021, section 5.3) have clear signatures:
- *dominant-prototype* collapse: every image goes to the same prototype, so each teacher distribution is one-hot
  (entropy ~ 0) and the batch's prototype usage is one-hot too;
- *uniform* collapse: every teacher distribution is flat (entropy ~ log K) and carries no information;
both drive the student-teacher KL to ~0. A collapsed backbone also shows per-dimension std of the L2-normalised
features ~ 0 (all images map to one point; ~1/sqrt(D) when healthy), and CLS-patch cosine similarity rising
towards 1 (dense features losing locality, what Gram anchoring counters).
`CollapseMonitor` turns these statistics into one `CollapseWarning` after `patience` consecutive bad checks.

The statistics are 0-dim float32 tensors on the input's device, not floats: a training step computes a dozen of
them and reads them all in one copy (`geodino.train.host.host_floats`) instead of waiting for the device once per
statistic; `float()` one to read it alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from geodino.errors import TrainingError

__all__ = [
    "CollapseMonitor",
    "CollapseWarning",
    "check_finite",
    "cls_patch_cosine",
    "feature_std",
    "image_spread",
    "layerscale_gamma",
    "logit_std",
    "prototype_norm",
    "student_teacher_kl",
    "teacher_entropy",
    "usage_entropy",
]


class CollapseWarning(UserWarning):
    """The teacher or the features look collapsed."""


@torch.no_grad()
def teacher_entropy(probs: Tensor) -> Tensor:
    """Mean entropy (nats) of the per-sample distributions [N, K]."""
    p = probs.float().reshape(-1, probs.shape[-1])
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean()


@torch.no_grad()
def usage_entropy(probs: Tensor) -> Tensor:
    """Entropy (nats) of the batch-mean distribution: how many prototypes the batch uses (log K = all evenly)."""
    m = probs.float().reshape(-1, probs.shape[-1]).mean(0)
    m = m / m.sum().clamp_min(1e-12)
    return -(m * torch.log(m.clamp_min(1e-12))).sum()


@torch.no_grad()
def student_teacher_kl(student_logits: Tensor, teacher_probs: Tensor, student_temp: float = 0.1) -> Tensor:
    """Mean KL(teacher || student) over matching rows: H(t, s) - H(t)."""
    log_s = F.log_softmax(student_logits.float().reshape(-1, student_logits.shape[-1]) / student_temp, dim=-1)
    t = teacher_probs.float().reshape(-1, teacher_probs.shape[-1])
    return (t * (torch.log(t.clamp_min(1e-12)) - log_s)).sum(-1).mean()


@torch.no_grad()
def feature_std(x: Tensor) -> Tensor:
    """Mean over dimensions of the batch std of L2-normalised features [N, D] (~1/sqrt(D) healthy, 0 collapsed)."""
    z = F.normalize(x.float().reshape(-1, x.shape[-1]), dim=-1)
    if z.shape[0] < 2:
        return z.new_tensor(float("nan"))
    return z.std(dim=0).mean()


@torch.no_grad()
def cls_patch_cosine(cls: Tensor, patches: Tensor) -> Tensor:
    """Mean cosine similarity between each image's CLS token [B, D] and its patch tokens [B, N, D]."""
    return F.cosine_similarity(cls.float().unsqueeze(1), patches.float(), dim=-1).mean()


@torch.no_grad()
def image_spread(x: Tensor) -> Tensor:
    """How much features differ across images relative to within one: mean over dims of the std across the batch,
    divided by the mean over images of the std across dims [N, D]. ~0 when every image gives the same token (a
    DINOv3 ViT at init: LayerScale 1e-5 leaves the CLS token nearly image-independent), ~1 for unrelated vectors."""
    x = x.float().reshape(-1, x.shape[-1])
    if x.shape[0] < 2:
        return x.new_tensor(float("nan"))
    return x.std(dim=0).mean() / x.std(dim=1).mean().clamp_min(1e-12)


@torch.no_grad()
def logit_std(logits: Tensor) -> Tensor:
    """Std over prototypes of the head's logits, averaged over rows: the scale that the temperature divides.

    With the DINOv3 prototype layer (std 0.02 on a unit bottleneck) it starts near 0.02, so at teacher temperature
    0.04 the Sinkhorn-Knopp targets differ from uniform by ~exp(0.5) at most."""
    return logits.float().reshape(-1, logits.shape[-1]).std(dim=-1).mean()


@torch.no_grad()
def layerscale_gamma(backbone: torch.nn.Module) -> Tensor:
    """Mean |gamma| of every LayerScale of a backbone (how much the residual branches contribute); nan without."""
    # LayerScale modules, matched by class name: their `gamma` parameter (typed Tensor | Module through nn.Module)
    values = [m.gamma.detach().float().abs().mean() for m in backbone.modules() if type(m).__name__ == "LayerScale"]  # type: ignore[operator]
    return torch.stack(values).mean() if values else torch.tensor(float("nan"))


@torch.no_grad()
def prototype_norm(head: torch.nn.Module) -> Tensor:
    """Mean row norm of a head's effective prototype matrix (plain or weight-normalised last layer).

    Sharded (FSDP2: a DTensor of rows), each rank takes the norms of its own rows and one all-reduce adds the sums
    up: the 65536 x 256 matrix was gathered whole on every rank at every check, to give the same mean."""
    # a DINOHead's Linear or WeightNormLinear weight (a DTensor when sharded), read by attribute
    w: Any = head.last_layer.weight  # type: ignore[union-attr]
    norms = w.detach().float().norm(dim=1)
    if not hasattr(norms, "full_tensor"):
        return norms.mean()
    return norms.sum().full_tensor() / w.shape[0]  # the sum over sharded rows: partial per rank, reduced once


@dataclass
class CollapseMonitor:
    """Flags a collapsed teacher from logged statistics; warns once per episode (after `patience` bad checks).

    `update(stats)` reads `teacher_entropy`, `teacher_usage_entropy`, `n_prototypes` and `teacher_feature_std`
    (+ `feature_dim`) from a dict of logged values and returns the list of reasons (empty when healthy).

    `rank` is the process's global rank in a multi-process run (set by whoever drives the monitor, the pretraining
    module): every rank checks its own batch's statistics and keeps `collapsed`, but only rank 0 warns, so an
    8-process run prints the paragraph once, not 8 times (the logged `monitor/*` curves are rank 0's too).
    """

    entropy_tol: float = 0.05  # fraction of log K counted as "near 0" / "near log K"
    std_tol: float = 0.1  # fraction of the healthy 1/sqrt(D) counted as "near 0"
    patience: int = 3
    bad_checks: int = 0
    warned: bool = False
    history: list[list[str]] = field(default_factory=list)
    rank: int = 0  # global rank: only rank 0 warns

    def reasons(self, stats: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        k = float(stats.get("n_prototypes", 0) or 0)
        h = stats.get("teacher_entropy")
        usage = stats.get("teacher_usage_entropy")
        if k > 1 and h is not None:
            log_k = math.log(k)
            one_hot_usage = usage is not None and usage <= self.entropy_tol * log_k
            if h <= self.entropy_tol * log_k and (usage is None or one_hot_usage):
                out.append(f"teacher outputs are one-hot on one prototype (entropy {h:.3g} nats)")
            elif h >= (1 - self.entropy_tol) * log_k:
                out.append(f"teacher outputs are uniform (entropy {h:.3g} of max {log_k:.3g} nats)")
        std, dim = stats.get("teacher_feature_std"), stats.get("feature_dim")
        if std is not None and dim and not math.isnan(std) and std <= self.std_tol / math.sqrt(float(dim)):
            out.append(f"teacher CLS features have per-dimension std {std:.3g} (all images at one point)")
        return out

    def update(self, stats: Mapping[str, Any], step: int | None = None) -> list[str]:
        why = self.reasons(stats)
        self.history.append(why)
        if not why:
            self.bad_checks, self.warned = 0, False
            return why
        self.bad_checks += 1
        if self.bad_checks >= self.patience and not self.warned:
            where = f" at step {step}" if step is not None else ""
            msg = (
                f"the teacher looks collapsed{where}: {'; '.join(why)}. Check the teacher temperature schedule "
                "(ssl.schedules.teacher_temp), the centering (ssl.dino.centering) and the lr; see "
                "docs/recipe.md#monitors"
            )
            if any("uniform" in w for w in why):
                msg += (
                    ". Uniform targets early in a short run are the ln K plateau of the official initialisation "
                    "(LayerScale 1e-5, linear prototypes): the small-budget recipe "
                    "configs/pretrain/small_vit_tiny.yaml leaves it; see docs/recipe.md#why-short-runs-sit-at-ln-k"
                )
            # once, as a CollapseWarning (which a notebook or `warnings.simplefilter` can catch or silence); it was also
            # logged to the `geodino.train` logger, whose fallback handler printed the same paragraph a second time;
            # and once per run: on global rank 0 only (every rank used to print it)
            if self.rank == 0:
                warnings.warn(msg, CollapseWarning, stacklevel=2)
            self.warned = True
        return why

    @property
    def collapsed(self) -> bool:
        """True once `patience` consecutive checks were bad."""
        return self.bad_checks >= self.patience


def check_finite(loss: Tensor | float, logs: Mapping[str, Any] | None = None, step: int | None = None) -> None:
    """Raise TrainingError naming the non-finite terms when the loss is NaN or Inf."""
    value = float(loss.detach().float().sum()) if isinstance(loss, Tensor) else float(loss)
    if math.isfinite(value):
        return
    bad: list[str] = []
    good: list[str] = []
    for k, v in (logs or {}).items():
        try:
            f = float(v.detach().float().sum()) if isinstance(v, Tensor) else float(v)
        except (TypeError, ValueError):
            continue
        (good if math.isfinite(f) else bad).append(f"{k}={f:.4g}")
    where = f" at step {step}" if step is not None else ""
    terms = f" (non-finite: {', '.join(bad)})" if bad else ""
    raise TrainingError(
        f"the training loss is {value}{where}{terms}; start a new run from the last good checkpoint (init_from; a "
        "resume keeps the recipe and would reach this loss again) with a lower lr (schedules.lr.peak) or gradient "
        "clipping (optim.clip_grad)"
    )
