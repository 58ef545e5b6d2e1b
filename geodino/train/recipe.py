"""The SSL recipe as a typed config: model, DINO, iBOT, KoLeo, Gram, optimiser and schedules.

Defaults are the official DINOv3 defaults (`dinov3/configs/ssl_default_config.yaml`), with lengths counted in
iterations instead of 1 250-iteration "epochs" (warmup 10 epochs = 12 500 iterations). Stage configs (`configs/
pretrain/*.yaml`) override them; `docs/recipe.md` lists every key with its official value. The Lightning module's
run config embeds this schema; `SSLMetaArch(cfg)` only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geodino.errors import ConfigError

__all__ = [
    "DinoConfig",
    "GramConfig",
    "IbotConfig",
    "KoLeoConfig",
    "MonitorConfig",
    "OptimConfig",
    "SSLConfig",
    "ScheduleConfig",
    "SchedulesConfig",
    "StudentConfig",
]


@dataclass
class StudentConfig:
    """The student backbone (the teacher and Gram teacher are built identically)."""

    # a name of geodino.models.archs.ARCHS (official default: vit_large), or from_init: init_from's architecture
    arch: str = "vit_small"
    patch_size: int = 16
    in_chans: int = 3
    drop_path_rate: float = 0.3  # stochastic depth of the student only (teachers run in eval mode)
    overrides: dict[str, Any] = field(default_factory=dict)  # extra build_model kwargs (ffn_layer, layerscale...)


@dataclass
class DinoConfig:
    """DINO CLS-token loss and head."""

    loss_weight: float = 1.0
    global_ignore_diagonal: bool = True  # global term on cross-view pairs only (2 of the 2x2)
    head_n_prototypes: int = 65536
    head_hidden_dim: int = 2048
    head_bottleneck_dim: int = 256
    head_nlayers: int = 3
    # prototype layer: linear (DINOv3), weight_norm (DINOv2, g trained), normalized (DINO v1, unit prototypes)
    head_last_layer: str = "linear"
    student_temp: float = 0.1
    centering: str = "sinkhorn_knopp"  # or "centering" (DINO v1 mean centering with momentum)
    center_momentum: float = 0.9  # only for centering="centering"
    sinkhorn_iterations: int = 3
    # local-term weight: `local_loss_weight_initial` until start_iter, then cosine to `local_loss_weight`
    local_loss_weight: float = 1.0
    local_loss_weight_initial: float = 1.0
    local_loss_weight_start_iter: int | float = 0  # int: iterations; float in [0, 1]: fraction of the run
    local_loss_weight_ramp_iters: int | float = 0


@dataclass
class IbotConfig:
    """iBOT masked-patch loss and its separate head (masks are drawn by the data loader with these values)."""

    loss_weight: float = 1.0
    head_n_prototypes: int = 65536
    head_hidden_dim: int = 2048
    head_bottleneck_dim: int = 256
    head_nlayers: int = 3
    head_last_layer: str = "linear"  # as dino.head_last_layer
    student_temp: float = 0.1
    centering: str = "sinkhorn_knopp"
    center_momentum: float = 0.9
    sinkhorn_iterations: int = 3
    mask_sample_probability: float = 0.5
    mask_ratio_min_max: list[float] = field(default_factory=lambda: [0.1, 0.5])


@dataclass
class KoLeoConfig:
    """KoLeo on the student's global-crop CLS tokens; total weight is loss_weight x n_global_crops."""

    loss_weight: float = 0.1
    distributed: bool = False  # all-gather and use groups of `group_size` (DINOv3 high-res stage: 16)
    group_size: int | None = None  # None: the whole global batch
    topk: int = 1

    def validate(self) -> None:
        """Raise ConfigError for options the KoLeo loss cannot use or would ignore (pretraining and distillation)."""
        if self.topk < 1:
            raise ConfigError(f"koleo.topk={self.topk} must be >= 1")
        if not self.distributed and self.topk != 1:
            raise ConfigError("koleo.topk > 1 needs koleo.distributed=true (as official)")
        if self.group_size is not None and self.group_size < 2:
            raise ConfigError(f"koleo.group_size={self.group_size} must be >= 2 (or null for the whole batch)")
        if self.group_size is not None and not self.distributed:
            # it would be ignored: the plain loss (official KoLeoLoss) runs over each process's batch of each crop
            raise ConfigError(
                f"koleo.group_size={self.group_size} needs koleo.distributed=true (KoLeo over groups of the "
                "gathered batch, as the official high-res stage); without it KoLeo runs over each process's batch "
                "and the group size would be ignored"
            )


@dataclass
class GramConfig:
    """Gram anchoring: a frozen Gram teacher, its refreshes, and the loss options."""

    use_loss: bool = False
    loss_weight: float = 1.0  # final weight (official 7B gram stage: 2.0; high-res stage: 1.5)
    weight_start_iter: int | float = 0  # weight is 0 before this iteration (float in [0, 1]: fraction of run) ...
    weight_ramp_iters: int | float = 0  # ... then a cosine ramp to loss_weight over these iterations (0: a step)
    ckpt: str | None = None  # Gram teacher weights (a backbone or teacher state_dict); None: snapshot the EMA teacher
    ema_teacher: bool = False  # use the EMA teacher itself (no separate copy, no high-res crops)
    it_load_ema_teacher: int = 0  # without ckpt: copy the EMA teacher in before this iteration
    rep_update: bool = True  # refresh from the EMA teacher every update_frequency iterations ...
    update_frequency: int = 50000
    it_first_update: int = 0  # ... from this iteration ...
    max_updates: int | None = None  # ... at most this many times (None: unlimited)
    normalized: bool = True  # L2-normalise tokens before the Gram matrices
    img_level: bool = False  # one Gram matrix per image (7B configs) instead of over the local batch
    remove_neg: bool = False  # clamp negative similarities of student and teacher to 0
    remove_only_teacher_neg: bool = False  # clamp the teacher's negative similarities only
    tokens_used: str = "all"  # all | masked | unmasked (student masked positions)
    resize_method: str = "bicubic"  # Gram teacher patch maps -> student grid
    resize_antialias: bool = False  # official: False


@dataclass
class OptimConfig:
    """AdamW, parameter groups and clipping."""

    adamw_beta1: float = 0.9
    adamw_beta2: float = 0.999
    clip_grad: float = 3.0  # per student sub-module (backbone, dino_head, ibot_head); 0 disables
    layerwise_decay: float = 0.9
    patch_embed_lr_mult: float = 0.2
    dino_head_wd_multiplier: float = 1.0
    freeze_last_layer_iters: int | float = 1250  # prototype layers get lr 0 this long (official: 1 epoch)
    # lr x 4*sqrt(B/1024) | x B/256 | x 1 (B: global batch); as official, v1 scales the peak lr only, v2 peak
    # and end (the official default config uses sqrt_wrt_1024)
    scaling_rule: str = "none"
    fused: bool | None = None  # fused AdamW: None = when all parameters are on CPU or CUDA


@dataclass
class ScheduleConfig:
    """start -> peak linearly over warmup_iters, held at peak for hold_iters, then cosine to end (v1: over the
    rest; v2: over cosine_iters).

    Lengths: an int is iterations, a float in [0, 1] a fraction of the run (`0.1`: the first tenth); any other
    float is an error.
    """

    start: float = 0.0
    peak: float = 0.0
    end: float = 0.0
    warmup_iters: int | float = 0
    cosine_iters: int | float | None = None  # v2 only: None = the rest of the run; else a constant tail follows
    freeze_iters: int | float = 0  # zeros at the start (v1 `freeze_iters`)
    # held at peak this long after the warmup, before the cosine (warmup-stable-decay; not in the official code,
    # whose schedules start the cosine right after the warmup: 0 keeps them exact)
    hold_iters: int | float = 0
    trunc_extra: float = 0.0  # v1 only


@dataclass
class SchedulesConfig:
    """Per-iteration schedules; `kind` v1 = DINOv2 CosineScheduler, v2 = DINOv3 linear_warmup_cosine_decay."""

    kind: str = "v1"
    # the run length the integer iteration counts were written for (official configs: 125 000 or 1M): set, every
    # integer length of the schedules, optim.freeze_last_layer_iters and the dino/gram weight ramps is scaled by
    # total_iters / reference_iters, so a short run follows the same shape; null: iterations as written
    reference_iters: int | None = None
    lr: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(0.0, 1e-3, 1e-6, warmup_iters=12500))
    weight_decay: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(0.04, 0.04, 0.4))
    momentum: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(0.992, 0.992, 1.0))
    teacher_temp: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(0.04, 0.07, 0.07, warmup_iters=37500))


@dataclass
class MonitorConfig:
    """Collapse diagnostics computed every `every` iterations (0 disables) and when to warn."""

    every: int = 10
    entropy_tol: float = 0.05  # teacher entropy within this fraction of 0 or log K counts as collapsed
    std_tol: float = 0.1  # feature std below this fraction of the healthy 1/sqrt(D) counts as collapsed
    patience: int = 3  # consecutive collapsed checks before the warning
    warmup_iters: int | float = 1000  # no warning before (iterations or a fraction of the run): with LayerScale
    # 1e-5 all images look alike at initialisation


@dataclass
class SSLConfig:
    """Everything `SSLMetaArch` needs: student, losses, Gram anchoring, optimiser and schedules."""

    student: StudentConfig = field(default_factory=StudentConfig)
    dino: DinoConfig = field(default_factory=DinoConfig)
    ibot: IbotConfig = field(default_factory=IbotConfig)
    koleo: KoLeoConfig = field(default_factory=KoLeoConfig)
    gram: GramConfig = field(default_factory=GramConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedules: SchedulesConfig = field(default_factory=SchedulesConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def validate(self) -> None:
        """Raise ConfigError naming the key for values the recipe cannot use."""
        for name, sec in (("dino", self.dino), ("ibot", self.ibot)):
            if sec.centering not in ("sinkhorn_knopp", "centering"):
                raise ConfigError(f"{name}.centering={sec.centering!r} must be 'sinkhorn_knopp' or 'centering'")
            if sec.head_last_layer not in ("linear", "weight_norm", "normalized"):
                raise ConfigError(
                    f"{name}.head_last_layer={sec.head_last_layer!r} must be 'linear' (DINOv3), 'weight_norm' "
                    "(DINOv2) or 'normalized' (DINO v1, unit prototypes)"
                )
            if sec.head_n_prototypes < 1 or sec.head_bottleneck_dim < 1 or sec.head_hidden_dim < 1:
                raise ConfigError(f"{name}.head_* sizes must be positive")
        lo, hi = self.ibot.mask_ratio_min_max
        if not 0 <= lo < hi <= 1:
            raise ConfigError(f"ibot.mask_ratio_min_max={[lo, hi]} must satisfy 0 <= min < max <= 1")
        if not 0 <= self.ibot.mask_sample_probability <= 1:
            raise ConfigError(f"ibot.mask_sample_probability={self.ibot.mask_sample_probability} must be in [0, 1]")
        g = self.gram
        if g.tokens_used not in ("all", "masked", "unmasked"):
            raise ConfigError(f"gram.tokens_used={g.tokens_used!r} must be 'all', 'masked' or 'unmasked'")
        if g.tokens_used != "all" and g.img_level:
            raise ConfigError("gram.tokens_used='masked'/'unmasked' needs gram.img_level=false (as official)")
        if g.remove_neg and g.remove_only_teacher_neg:
            raise ConfigError("gram.remove_neg and gram.remove_only_teacher_neg are exclusive; set one to false")
        if g.ema_teacher and g.ckpt:
            raise ConfigError("gram.ema_teacher=true and gram.ckpt are exclusive; use one Gram teacher source")
        if g.ema_teacher and g.rep_update:
            raise ConfigError("gram.ema_teacher=true needs gram.rep_update=false (the EMA teacher is always current)")
        if g.update_frequency < 1:
            raise ConfigError(f"gram.update_frequency={g.update_frequency} must be >= 1")
        if g.resize_method not in ("bicubic", "bilinear", "nearest", "area"):
            raise ConfigError(f"gram.resize_method={g.resize_method!r} must be bicubic, bilinear, nearest or area")
        if self.schedules.kind not in ("v1", "v2"):
            raise ConfigError(f"schedules.kind={self.schedules.kind!r} must be 'v1' or 'v2'")
        self.koleo.validate()
        if self.optim.scaling_rule not in ("sqrt_wrt_1024", "linear_wrt_256", "none"):
            raise ConfigError(
                f"optim.scaling_rule={self.optim.scaling_rule!r} must be sqrt_wrt_1024, linear_wrt_256 or none"
            )
