"""The distillation meta-architecture: one frozen teacher (backbone + DINO/iBOT heads) -> one or more students.

Follows the official `MultiDistillationMetaArch` (`dinov3/train/multidist_meta_arch.py`):

- the teacher is frozen and in eval mode (no RoPE augmentation, no drop path, no gradients);
- students see *unmasked* crops; the iBOT term becomes patch distillation at the positions the mask generator
  samples (`mask_indices`), against the teacher's patch tokens at the same positions;
- the DINO term compares student CLS logits of global and local crops with the teacher's Sinkhorn-Knopp targets
  of the global crops (cross-view only on globals, 2/18 and 16/18 scales), plus KoLeo on the student's global CLS;
  no Gram term;
- each student keeps its own EMA (`students_ema`), which is what gets exported, as the official dumps do.

The teacher runs once per step whatever the number of students. With several ranks and per-student
subgroups, the teacher's head-bottleneck features (not the prototype scores, which are larger) are
all-gathered and chunked per subgroup (`subgroups.broadcast_to_subgroups`), then the prototype layer and
Sinkhorn-Knopp run per subgroup, exactly as official.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from geodino.errors import InputError
from geodino.losses.dino import DINOLoss
from geodino.losses.float32 import float32_region
from geodino.losses.ibot import IBOTPatchLoss
from geodino.losses.koleo import KoLeoLoss, KoLeoLossDistributed
from geodino.models.heads import DINOHead
from geodino.models.layers.patch_embed import trim_to_patch_grid
from geodino.train.subgroups import SubgroupLayout, broadcast_to_subgroups, layout_for_rank


@dataclass
class DistillLossWeights:
    """Loss weights and options of the distillation recipe (official: DINO 1, iBOT 1, KoLeo 0.1, local weight 1;
    both terms at student temperature 0.1 with 3 Sinkhorn-Knopp iterations, KoLeo over each process's batch).
    The iBOT and KoLeo options are the config's `ibot.*` / `koleo.*` keys, read as pretraining reads them."""

    dino: float = 1.0
    ibot: float = 1.0
    koleo: float = 0.1
    dino_local: float = 1.0
    global_ignore_diagonal: bool = True
    student_temp: float = 0.1  # DINO term (dino.student_temp)
    sinkhorn_iterations: int = 3  # DINO term (dino.sinkhorn_iterations)
    ibot_student_temp: float = 0.1
    ibot_sinkhorn_iterations: int = 3
    koleo_distributed: bool = False  # KoLeo over groups of the student's gathered batch (koleo.distributed)
    koleo_group_size: int | None = None
    koleo_topk: int = 1


def _forward_features(backbone: nn.Module, crops: list[Tensor]) -> list[dict[str, Tensor]]:
    """`forward_features` on a list of crops (one dict per crop set); accepts a FrozenBackbone wrapper too."""
    model: Any = getattr(backbone, "model", backbone)  # a ViT or a FrozenBackbone's: read by attribute
    out = model.forward_features(crops, masks=None) if len(crops) > 1 else [model.forward_features(crops[0])]
    return out if isinstance(out, list) else [out]


class DistillStudent(nn.Module):
    """A student: `backbone`, `dino_head`, `ibot_head` (official key prefixes), with one `forward` so that it can
    be wrapped in DistributedDataParallel over its subgroup."""

    def __init__(self, backbone: nn.Module, dino_head: DINOHead, ibot_head: DINOHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.dino_head = dino_head
        self.ibot_head = ibot_head

    def forward(self, global_crops: Tensor, local_crops: Tensor | None, mask_indices: Tensor) -> dict[str, Tensor]:
        """Unmasked forward of all crops: CLS (pre-head) of globals, DINO logits of globals and locals, iBOT logits
        of the global patch tokens at `mask_indices` (indices into the flattened [n_g·B, N] patch grid)."""
        crops = [global_crops]
        if local_crops is not None and local_crops.numel():  # off the patch grid: what the official conv reads
            patch = int(getattr(self.backbone, "model", self.backbone).patch_size)  # type: ignore[arg-type]
            crops.append(trim_to_patch_grid(local_crops, patch))
        outs = _forward_features(self.backbone, crops)
        g_cls, g_patch = outs[0]["x_norm_clstoken"], outs[0]["x_norm_patchtokens"]
        cls_all = [o["x_norm_clstoken"] for o in outs]
        logits = self.dino_head(torch.cat(cls_all, 0)).split([c.shape[0] for c in cls_all], 0)
        patch_logits = self.ibot_head(torch.index_select(g_patch.flatten(0, 1), 0, mask_indices))
        out = {"global_cls": g_cls, "global_logits": logits[0], "patch_logits": patch_logits}
        if len(logits) > 1:
            out["local_logits"] = logits[1]
        return out


class DistillMetaArch(nn.Module):
    """Frozen teacher + students (each a `DistillStudent`) + their EMAs.

    `students` are the students this process trains: all of them when co-located (one device, or all students on
    every rank), or the one of this rank's subgroup. `layout` says which (see `subgroups.SubgroupLayout`).
    """

    def __init__(
        self,
        teacher_backbone: nn.Module,
        teacher_dino_head: DINOHead,
        teacher_ibot_head: DINOHead,
        students: dict[str, DistillStudent],
        weights: DistillLossWeights | None = None,
        layout: SubgroupLayout | None = None,
        n_global_crops: int = 2,
    ) -> None:
        super().__init__()
        self.teacher = nn.ModuleDict(
            {"backbone": teacher_backbone, "dino_head": teacher_dino_head, "ibot_head": teacher_ibot_head}
        )
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.students = nn.ModuleDict(students)
        self.students_ema = nn.ModuleDict({k: copy.deepcopy(v) for k, v in students.items()})
        self.students_ema.requires_grad_(False)
        self.weights = weights or DistillLossWeights()
        self.layout = layout or layout_for_rank(None, 0, 1, 1, len(students))
        self.n_global_crops = int(n_global_crops)
        w = self.weights
        group = self.layout.group
        k_dino, k_ibot = teacher_dino_head.out_dim, teacher_ibot_head.out_dim
        self.dino_loss = DINOLoss(k_dino, w.student_temp, sinkhorn_iterations=w.sinkhorn_iterations, group=group)
        self.ibot_loss = IBOTPatchLoss(
            k_ibot, w.ibot_student_temp, sinkhorn_iterations=w.ibot_sinkhorn_iterations, group=group
        )
        self.koleo_loss: nn.Module = (
            KoLeoLossDistributed(topk=w.koleo_topk, group_size=w.koleo_group_size, group=group)
            if w.koleo_distributed
            else KoLeoLoss()
        )
        self.callers: dict[str, nn.Module] = {}  # DDP wrappers of the students, when distributed
        self.teacher_forward_count = 0  # observability: the teacher runs once per step, whatever the students

    # -- modes ---------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> DistillMetaArch:
        """Students follow `mode`; the teacher and the EMAs always stay in eval mode."""
        super().train(mode)
        self.teacher.eval()
        self.students_ema.eval()
        return self

    # -- teacher -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def teacher_targets(
        self,
        global_crops: Tensor,
        mask_indices: Tensor,
        n_masked_patches: Tensor | int,
        teacher_temp: float,
        global_batch_size: int | None = None,
    ) -> dict[str, Tensor]:
        """Teacher outputs for this rank's student batch: SK-centred CLS targets [n_g, B_s, K] and patch targets
        at the sampled positions [M, K_ibot]. One teacher backbone forward."""
        self.teacher_forward_count += 1
        n_g = self.n_global_crops
        out = _forward_features(self.teacher["backbone"], [global_crops])[0]
        cls, patch = out["x_norm_clstoken"], out["x_norm_patchtokens"]
        n_tokens = patch.shape[1]
        dino_head, ibot_head = self.teacher["dino_head"], self.teacher["ibot_head"]
        if self.layout.colocated:
            # Same images for teacher and students: run the iBOT head only where it is needed.
            sel = torch.index_select(patch.flatten(0, 1), 0, mask_indices)
            patch_logits = ibot_head(sel)
            cls_logits = dino_head(cls)
        else:
            g = global_batch_size
            cls_b = dino_head(cls, no_last_layer=True).view(n_g, -1, dino_head.bottleneck_dim)
            cls_b = broadcast_to_subgroups(cls_b, 1, self.layout, g)
            cls_logits = dino_head(cls_b.flatten(0, 1), only_last_layer=True)
            patch_b = ibot_head(patch.flatten(0, 1), no_last_layer=True).view(n_g, -1, ibot_head.bottleneck_dim)
            patch_b = broadcast_to_subgroups(patch_b, 1, self.layout, None if g is None else g * n_tokens)
            sel = torch.index_select(patch_b.flatten(0, 1), 0, mask_indices)
            patch_logits = ibot_head(sel, only_last_layer=True)
        cls_probs = self.dino_loss.teacher_targets(cls_logits, teacher_temp).unflatten(0, (n_g, -1))
        patch_probs = self.ibot_loss.teacher_targets(patch_logits, teacher_temp, n_masked_patches)
        return {
            "cls_centered": cls_probs,
            "patch_centered": patch_probs,
            "cls_logits": cls_logits.unflatten(0, (n_g, -1)),
        }

    # -- students ------------------------------------------------------------------------------------------
    def student_losses(
        self,
        student: nn.Module,
        global_crops: Tensor,
        local_crops: Tensor,
        masks: Tensor,
        mask_indices: Tensor,
        masks_weight: Tensor,
        teacher: dict[str, Tensor],
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted loss of one student (DINO local + global, KoLeo, iBOT patch distillation) and its parts.

        `student` is a DistillStudent (or its DDP wrapper). Loss scales as official `compute_losses`."""
        w = self.weights
        n_g = self.n_global_crops
        out = student(global_crops, local_crops, mask_indices)
        g_cls = out["global_cls"]
        b = g_cls.shape[0] // n_g
        n_l = out["local_logits"].shape[0] // b if "local_logits" in out else 0
        global_terms = n_g * (n_g - 1) if w.global_ignore_diagonal else n_g * n_g
        local_terms = n_g * n_l
        total_terms = global_terms + local_terms
        parts: dict[str, Tensor] = {}
        loss = g_cls.new_zeros(())
        if n_l:
            parts["dino_local"] = self.dino_loss(out["local_logits"].unflatten(0, (n_l, b)), teacher["cls_centered"])
            loss = loss + w.dino * (local_terms / total_terms) * w.dino_local * parts["dino_local"]
        if global_terms:  # one global crop with the diagonal ignored has no cross-view pair (not 0 x NaN)
            parts["dino_global"] = self.dino_loss(
                out["global_logits"].unflatten(0, (n_g, b)),
                teacher["cls_centered"],
                ignore_diagonal=w.global_ignore_diagonal,
            )
            loss = loss + w.dino * (global_terms / total_terms) * parts["dino_global"]
        parts["koleo"] = sum(self.koleo_loss(x) for x in g_cls.unflatten(0, (n_g, b))) / n_g
        loss = loss + w.koleo * n_g * parts["koleo"]
        parts["ibot"] = self.ibot_loss(out["patch_logits"], teacher["patch_centered"], masks, masks_weight)
        loss = loss + w.ibot * parts["ibot"]
        parts["loss"] = loss
        return loss, parts

    def forward_backward(
        self, batch: dict[str, Any], teacher_temp: float, global_batch_size: int | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One step's losses for every student on this rank, back-propagated (the optimizer step is separate).

        The metrics are detached 0-dim tensors, not floats: a float read before `backward` would make the host wait
        for the device to finish the forward before it could queue the backward (a GPU synchronisation per term).

        `batch` holds `global_crops`, `local_crops` (crop-major, this rank's data batch) and the student-batch
        `masks` [n_g·B_s, N], `mask_indices` [M], `masks_weight` [M], `n_masked_patches`.
        """
        # the loader's count (crops.n_global, in the batch since collate_ssl records it) wins over the default 2:
        # with another count the rows would be split into the wrong (crops, images) and pair crops of other images
        self.n_global_crops = n_g = int(batch.get("n_global_crops", self.n_global_crops))
        global_crops, local_crops = batch["global_crops"], batch["local_crops"]
        masks, mask_indices = batch["masks"], batch["mask_indices"]
        masks_weight, n_masked = batch["masks_weight"], batch["n_masked_patches"]
        if n_g < 1 or global_crops.shape[0] % n_g:
            raise InputError(f"global_crops has {global_crops.shape[0]} rows, not a multiple of {n_g} crops per image")
        teacher = self.teacher_targets(global_crops, mask_indices, n_masked, teacher_temp, global_batch_size)
        if not self.layout.colocated:
            g = global_batch_size
            n_l = local_crops.shape[0] * n_g // max(global_crops.shape[0], 1)
            global_crops = broadcast_to_subgroups(global_crops.unflatten(0, (n_g, -1)), 1, self.layout, g).flatten(0, 1)
            if n_l:
                local_crops = broadcast_to_subgroups(local_crops.unflatten(0, (n_l, -1)), 1, self.layout, g).flatten(
                    0, 1
                )
        if masks.shape[0] != global_crops.shape[0]:  # drawn for another crop count: iBOT would pair other patches
            raise InputError(
                f"masks has {masks.shape[0]} rows for {global_crops.shape[0]} student global crops "
                f"({n_g} per image); draw one mask per global crop"
            )
        total = global_crops.new_zeros(())
        metrics: dict[str, Tensor] = {}
        for name, student in self.students.items():
            loss, parts = self.student_losses(
                self.callers.get(name, student), global_crops, local_crops, masks, mask_indices, masks_weight, teacher
            )
            total = total + loss
            metrics.update({f"{name}/{k}": v.detach() for k, v in parts.items()})
        # outside the caller's autocast (train.precision=bf16-mixed): a backward run under it casts its matrix
        # products too, the float32 loss terms' included; each backward op runs in its forward op's dtype instead
        with float32_region(total.device.type):
            total.backward()
        metrics["loss"] = total.detach()
        return total.detach(), metrics

    @torch.no_grad()
    def update_ema(self, momentum: float) -> None:
        """EMA of every student (backbone and heads) into its export copy: ema <- m·ema + (1-m)·student."""
        s_params: list[Tensor] = []
        e_params: list[Tensor] = []
        for name, student in self.students.items():
            for ps, pe in zip(student.parameters(), self.students_ema[name].parameters()):
                s_params.append(ps.detach())
                e_params.append(pe)
        if e_params:
            torch._foreach_lerp_(e_params, s_params, 1.0 - momentum)  # one pass over memory
