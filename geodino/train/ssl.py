"""The DINOv3 SSL meta-architecture: student, EMA teacher, Gram teacher, heads and the loss bookkeeping.

Pure torch (no Lightning); `geodino.train.module.SSLModule` drives it. API:

    arch = SSLMetaArch(cfg: SSLConfig, total_iters=N, global_batch_size=B)  # builds models, losses, schedules
    loss, logs = arch(batch, iteration)        # teacher targets, student forward, every loss term, the total
    loss.backward(); optimizer.step()          # optimizer = build_optimizer(arch.param_groups(), ...)
    arch.update_teacher(momentum)              # EMA of student -> teacher (backbone and both heads), foreach
    arch.maybe_refresh_gram(iteration)         # after the step: copy the EMA teacher into the Gram teacher
                                               # every K iterations from I, at most M times -> bool
    arch.param_groups()                        # AdamW groups with lr/wd multipliers and the last-layer flag
    arch.schedules.at(iteration)               # lr, last_layer_lr, weight_decay, momentum, teacher_temp, ...
    arch.init_from_teacher_state(state_dict)   # continue from a teacher (`backbone.*`, optional heads)
    arch.load_gram_teacher(path_or_state)      # Gram teacher from a checkpoint (or `gram.ckpt` at build time)
    arch.snapshot_gram_from_teacher()          # Gram teacher <- EMA teacher (done automatically at
                                               # `gram.it_load_ema_teacher` when there is no `gram.ckpt`)

Modules: `student` and `teacher` are `nn.ModuleDict(backbone, dino_head, ibot_head)`; `gram_teacher` is
`nn.ModuleDict(backbone)` when Gram anchoring uses a separate teacher (else None). Teachers are frozen
(`requires_grad=False`) and stay in eval mode (no drop path, no RoPE augmentation) whatever `train()` is called
with. The batch is the SSL batch dict of CONTRIBUTING.md (`global_crops`, `local_crops`, `masks`, `mask_indices`,
`masks_weight`, `n_masked_patches`, optional `gram_crops`; `n_global_crops` defaults to 2).

Distributed use: wrap with DDP (teachers have no trainable parameters), or shard each backbone block and each
module of `student`/`teacher`/`gram_teacher` with FSDP2 `fully_shard` (identically for student and teacher, so the
EMA's foreach runs on matching local shards). Backbones are always called through `module(...)` (with
`is_training=True`) so FSDP's root hooks run; parameters are matched by name at every EMA/Gram update (nothing
is cached across sharding). Sinkhorn-Knopp and KoLeo reduce over `process_group` (default: the whole world).

Beside it: the batch check (`ssl_inputs`), the loss terms (`ssl_losses`), weights loaded from outside
(`ssl_loading`), the Gram term (`ssl_gram`), the monitor statistics (`ssl_monitoring`), sharding (`ssl_sharding`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from geodino.errors import ConfigError
from geodino.losses import DINOLoss, GramLoss, IBOTPatchLoss, KoLeoLoss, KoLeoLossDistributed
from geodino.train import monitors as mon
from geodino.train import ssl_loading, ssl_losses
from geodino.train.optim import param_groups as build_param_groups
from geodino.train.recipe import SSLConfig, projection_head
from geodino.train.schedules import Schedules
from geodino.train.ssl_gram import gram_updates_before, resize_patch_tokens
from geodino.train.ssl_inputs import SSLInputs, ssl_inputs
from geodino.train.ssl_monitoring import monitor_step
from geodino.train.ssl_sharding import call_backbone, copy_tensors, fully_shard_arch, local_shard, reshard

__all__ = [
    "SSLMetaArch",
    "fully_shard_arch",
    "gram_updates_before",
    "resize_patch_tokens",
]

log = logging.getLogger("geodino.train")


def _named_tensors(module: nn.Module) -> dict[str, Tensor]:
    return dict(module.named_parameters())


class SSLMetaArch(nn.Module):
    """Student + EMA teacher (+ Gram teacher) with DINO, iBOT, KoLeo and Gram losses (see the module docstring)."""

    gram_initialized: Tensor  # registered buffer (declared: nn.Module's __getattr__ is typed Tensor | Module)

    def __init__(
        self,
        cfg: SSLConfig,
        *,
        total_iters: int | None = None,
        global_batch_size: int = 1024,
        process_group: dist.ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        from geodino.models import build_model

        cfg.validate()
        self.cfg = cfg
        self.process_group = process_group
        s = cfg.student
        kwargs: dict[str, Any] = dict(s.overrides)
        kwargs.setdefault("drop_path_rate", s.drop_path_rate)
        student_backbone = build_model(s.arch, patch_size=s.patch_size, in_chans=s.in_chans, **kwargs)
        teacher_backbone = build_model(s.arch, patch_size=s.patch_size, in_chans=s.in_chans, **kwargs)
        self.embed_dim = int(student_backbone.embed_dim)
        self.patch_size = int(s.patch_size)

        def with_heads(backbone: nn.Module) -> nn.ModuleDict:  # the DINO and iBOT heads differ only in their config
            dino, ibot = projection_head(self.embed_dim, cfg.dino), projection_head(self.embed_dim, cfg.ibot)
            return nn.ModuleDict({"backbone": backbone, "dino_head": dino, "ibot_head": ibot})

        self.student, self.teacher = with_heads(student_backbone), with_heads(teacher_backbone)
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)

        d, i, k, g = cfg.dino, cfg.ibot, cfg.koleo, cfg.gram
        self.dino_loss = DINOLoss(
            d.head_n_prototypes, d.student_temp, d.centering, d.center_momentum, d.sinkhorn_iterations, process_group
        )
        self.ibot_loss = IBOTPatchLoss(
            i.head_n_prototypes, i.student_temp, i.centering, i.center_momentum, i.sinkhorn_iterations, process_group
        )
        k.validate()  # a recipe built here without its config's validate(): topk > 1 needs distributed, ...
        self.koleo_loss: nn.Module = (
            KoLeoLossDistributed(topk=k.topk, group_size=k.group_size, group=process_group)
            if k.distributed
            else KoLeoLoss()
        )

        self.gram_teacher: nn.ModuleDict | None = None
        self.gram_loss: GramLoss | None = None
        # the buffer goes into checkpoints; the per-step checks read its host copy (`gram_ready`, kept in sync by
        # `_set_gram_initialized` and on state-dict loads): reading a CUDA buffer waited for the device every step
        self.register_buffer("gram_initialized", torch.zeros((), dtype=torch.bool), persistent=True)
        self._gram_ready = False
        if g.use_loss:
            self.gram_loss = GramLoss(g.normalized, g.img_level, g.remove_neg, g.remove_only_teacher_neg)
            if not g.ema_teacher:
                gram_backbone = build_model(s.arch, patch_size=s.patch_size, in_chans=s.in_chans, **kwargs)
                gram_backbone.load_state_dict(student_backbone.state_dict())
                self.gram_teacher = nn.ModuleDict({"backbone": gram_backbone})
                self.gram_teacher.requires_grad_(False)
                if g.ckpt:
                    self.load_gram_teacher(g.ckpt)
        self.collapse_monitor = mon.CollapseMonitor(cfg.monitor.entropy_tol, cfg.monitor.std_tol, cfg.monitor.patience)
        self.schedules: Schedules | None = None
        if total_iters is not None:
            self.set_schedules(total_iters, global_batch_size)
        self.train(True)

    # ------------------------------------------------------------------ set-up
    def set_schedules(self, total_iters: int, global_batch_size: int = 1024) -> Schedules:
        """(Re)build the per-iteration schedules for a run of `total_iters` iterations."""
        self.schedules = Schedules.build(self.cfg, total_iters, global_batch_size)
        return self.schedules

    def train(self, mode: bool = True) -> SSLMetaArch:
        """Student follows `mode`; the teachers always stay in eval mode (official)."""
        super().train(mode)
        self.teacher.eval()
        if self.gram_teacher is not None:
            self.gram_teacher.eval()
        return self

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW groups of the student (see `geodino.train.optim.param_groups`)."""
        o = self.cfg.optim
        return build_param_groups(
            self.student,
            layerwise_decay=o.layerwise_decay,
            patch_embed_lr_mult=o.patch_embed_lr_mult,
            dino_head_wd_multiplier=o.dino_head_wd_multiplier,
        )

    # ------------------------------------------------------------------ teachers
    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher <- m·teacher + (1-m)·student for backbone and heads, as one foreach lerp (one pass over memory)."""
        reshard(self.student, self.teacher)
        t_list: list[Tensor] = []
        s_list: list[Tensor] = []
        for key, s_mod in self.student.items():
            t_params = _named_tensors(self.teacher[key])
            for name, p in s_mod.named_parameters():
                t_list.append(t_params[name])
                s_list.append(p.detach())
        local = [local_shard(t) for t in t_list], [local_shard(s) for s in s_list]
        torch._foreach_lerp_(local[0], local[1], 1.0 - float(momentum))

    @torch.no_grad()
    def snapshot_gram_from_teacher(self) -> None:
        """Gram teacher backbone <- EMA teacher backbone (parameters and buffers); marks it initialised."""
        if self.gram_teacher is None:
            return
        reshard(self.teacher, self.gram_teacher)
        copy_tensors(self.teacher["backbone"], self.gram_teacher["backbone"])
        self._set_gram_initialized(True)

    @torch.no_grad()
    def materialize(self, device: torch.device | str) -> None:
        """Allocate and initialise a meta-built arch (`trainer.meta_init`), normally after FSDP2 has sharded it.

        The student gets the official init and is copied into the teacher and the Gram teacher, so they start
        equal as in a full build; loss buffers and the Gram flag start at zero. Sharded parameters are allocated
        and initialised shard by shard (random draws follow the caller's RNG seeding; see SSLModule).
        """
        self.to_empty(device=device)
        for module in self.student.values():
            module.init_weights()  # type: ignore[operator]  # the backbone's and the heads' own (typed Tensor | Module)
        for other in (self.teacher, self.gram_teacher):
            for name, module in (other or {}).items():
                copy_tensors(self.student[name], module)
        for loss in (self.dino_loss, self.ibot_loss, self.koleo_loss, self.gram_loss):
            for buf in loss.buffers() if loss is not None else ():
                local_shard(buf).zero_()
        self._set_gram_initialized(False)

    def load_gram_teacher(self, source: str | Path | Mapping[str, Any]) -> None:
        """Gram teacher backbone from a checkpoint path or state dict (backbone, teacher or training checkpoint)."""
        ssl_loading.load_gram_teacher(self, source)

    @property
    def gram_ready(self) -> bool:
        """Whether the Gram teacher holds weights: the host copy of the checkpointed `gram_initialized` buffer
        (read-only; `mark_gram_initialized`, snapshots and state-dict loads set both)."""
        return self._gram_ready

    def mark_gram_initialized(self) -> None:
        """Call after writing the Gram teacher's weights by other means (e.g. stage initialisation)."""
        self._set_gram_initialized(True)

    def _set_gram_initialized(self, value: bool) -> None:
        """The Gram flag: the checkpointed buffer and its host copy together."""
        self.gram_initialized.fill_(value)
        self._gram_ready = value

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Load as nn.Module does, then take the Gram flag's host copy from the loaded value (one read per load)."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        loaded = state_dict.get(prefix + "gram_initialized")
        if torch.is_tensor(loaded) and loaded.device.type != "meta":
            self._gram_ready = bool(loaded.item())

    def maybe_refresh_gram(self, iteration: int) -> bool:
        """After the optimizer step of `iteration`: refresh the Gram teacher from the EMA teacher when due."""
        g = self.cfg.gram
        if self.gram_teacher is None or not g.rep_update:
            return False
        n = iteration + 1
        if n < g.it_first_update or n % g.update_frequency != 0:
            return False
        if g.max_updates is not None and gram_updates_before(iteration, g.it_first_update, g.update_frequency) >= (
            g.max_updates
        ):
            return False
        self.snapshot_gram_from_teacher()
        log.info("Gram teacher refreshed from the EMA teacher after iteration %d", iteration)
        return True

    def init_from_teacher_state(self, state: Mapping[str, Any], *, heads: bool = True, source: str = "") -> list[str]:
        """Student, teacher (and Gram teacher) from a teacher state dict: `backbone.*` (+ `dino_head.*`,
        `ibot_head.*`) or a bare backbone state dict. Heads missing from `state` stay freshly initialised."""
        return ssl_loading.init_from_teacher_state(self, state, heads=heads, source=source)

    # ------------------------------------------------------------------ forward
    def _schedule_values(self, iteration: int, overrides: Mapping[str, float] | None) -> dict[str, float]:
        vals = dict(self.schedules.at(iteration)) if self.schedules is not None else {}
        vals.update(overrides or {})
        for key in ("teacher_temp",):
            if key not in vals:
                raise ConfigError(
                    "SSLMetaArch has no schedules: build it with total_iters=... (or call set_schedules) "
                    "or pass sched={'teacher_temp': ...}"
                )
        vals.setdefault("dino_local_weight", self.cfg.dino.local_loss_weight)
        vals.setdefault("gram_weight", self.cfg.gram.loss_weight if self.cfg.gram.use_loss else 0.0)
        return vals

    def _inputs(self, batch: Mapping[str, Any]) -> SSLInputs:
        """The batch checked and completed (masks, indices and counts filled in when the loader gave none)."""
        return ssl_inputs(batch, self.patch_size)

    @torch.no_grad()
    def get_teacher_output(self, x: SSLInputs, teacher_temp: float) -> dict[str, Tensor]:
        """The EMA teacher on the unmasked global crops: CLS and patch tokens, DINO logits and Sinkhorn-Knopp
        targets [n_global, B, K], and iBOT targets of the masked patches (official `get_teacher_output`)."""
        t_out = call_backbone(self.teacher["backbone"], x.global_crops)
        t_cls = t_out["x_norm_clstoken"]
        t_patch = t_out["x_norm_patchtokens"]
        t_cls_logits = self.teacher["dino_head"](t_cls)
        t_cls_probs = self.dino_loss.teacher_targets(t_cls_logits, teacher_temp).unflatten(
            0, (x.n_global, x.batch_size)
        )
        t_masked = torch.index_select(t_patch.flatten(0, 1), 0, x.mask_indices)
        t_masked_probs = self.ibot_loss.teacher_targets(self.teacher["ibot_head"](t_masked), teacher_temp, x.n_masked)
        reshard(self.teacher)
        return {
            "cls": t_cls,
            "patch": t_patch,
            "cls_logits": t_cls_logits,
            "cls_probs": t_cls_probs,
            "masked_probs": t_masked_probs,
        }

    def get_student_output(self, x: SSLInputs) -> dict[str, Any]:
        """The student on the masked global crops and the local crops: CLS and patch tokens of the globals, DINO
        logits per crop set and iBOT logits of the masked patches (official `get_student_output`)."""
        crops = [x.global_crops] + ([x.local_crops] if x.local_crops is not None else [])
        outs = call_backbone(self.student["backbone"], crops, masks=[x.masks] + ([None] if x.n_local else []))
        g_cls, g_patch = outs[0]["x_norm_clstoken"], outs[0]["x_norm_patchtokens"]
        cls_all = [g_cls] + ([outs[1]["x_norm_clstoken"]] if x.n_local else [])
        sizes = [c.shape[0] for c in cls_all]
        s_cls_logits = torch.split(self.student["dino_head"](torch.cat(cls_all)), sizes)
        s_masked = torch.index_select(g_patch.flatten(0, 1), 0, x.mask_indices)
        return {
            "cls": g_cls,
            "patch": g_patch,
            "cls_logits": s_cls_logits,
            "global_logits": s_cls_logits[0].unflatten(0, (x.n_global, x.batch_size)),
            "masked_logits": self.student["ibot_head"](s_masked),
        }

    def compute_losses(
        self, x: SSLInputs, teacher: Mapping[str, Tensor], student: Mapping[str, Any], vals: Mapping[str, float]
    ) -> tuple[Tensor, dict[str, Any]]:
        """DINO (local and global), KoLeo, iBOT and Gram losses with the official term scales (official
        `compute_losses`); returns (total, logs)."""
        return ssl_losses.compute_losses(self, x, teacher, student, vals)

    def forward(
        self, batch: Mapping[str, Any], iteration: int = 0, sched: Mapping[str, float] | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """One SSL step's losses: returns (total loss, logs). Logs hold detached 0-dim tensors and floats."""
        x = self._inputs(batch)
        vals = self._schedule_values(iteration, sched)
        g = self.cfg.gram
        # Gram teacher snapshot from the EMA teacher (official `it_load_ema_teacher`; also after a resume).
        if self.gram_teacher is not None and not self.gram_ready and not g.ckpt:
            if iteration >= g.it_load_ema_teacher:
                self.snapshot_gram_from_teacher()
        teacher = self.get_teacher_output(x, vals["teacher_temp"])
        student = self.get_student_output(x)
        total, logs = self.compute_losses(x, teacher, student, vals)
        every = self.cfg.monitor.every
        # at the steps a row is logged with the default trainer.log_every_n_steps == monitor.every (0, then N-1, 2N-1,
        # ...): at 0, N, 2N the rows at N-1, 2N-1 carried values N-1 steps old, drawn in curves.png at the wrong step
        if every and (iteration == 0 or (iteration + 1) % every == 0):
            logs.update(monitor_step(self, teacher, student, iteration))
        return total, logs
