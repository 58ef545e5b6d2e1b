"""The SSL recipe as a typed config: model, DINO, iBOT, KoLeo, Gram, optimiser and schedules.

Defaults are the official DINOv3 defaults (`dinov3/configs/ssl_default_config.yaml`), with lengths counted in
iterations instead of 1 250-iteration "epochs" (warmup 10 epochs = 12 500 iterations). Stage configs (`configs/
pretrain/*.yaml`) override them; `docs/recipe.md` lists every key with its official value. The Lightning module's
run config embeds this schema; `SSLMetaArch(cfg)` only reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geodino.errors import ConfigError

if TYPE_CHECKING:
    from geodino.models.heads import DINOHead

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
    "projection_head",
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


def projection_head(embed_dim: int, c: DinoConfig | IbotConfig) -> DINOHead:
    """The DINO or iBOT projection head (`models.heads.DINOHead`) that `c`'s `head_*` keys describe, over features
    of `embed_dim`: the one reading of those keys, for pretraining's student and teacher heads and distillation's
    warm-up heads (whose config refuses a `head_last_layer` other than the default)."""
    from geodino.models.heads import DINOHead

    return DINOHead(
        embed_dim,
        c.head_n_prototypes,
        c.head_hidden_dim,
        c.head_bottleneck_dim,
        c.head_nlayers,
        last_layer=c.head_last_layer,
    )


@dataclass
class KoLeoConfig:
    """KoLeo on the student's global-crop CLS tokens; total weight is loss_weight x n_global_crops."""

    loss_weight: float = 0.1
    distributed: bool = False  # all-gather and use groups of `group_size` (DINOv3 high-res stage: 16)
    group_size: int | None = None  # None: the whole global batch
    topk: int = 1

    def validate(self, prefix: str = "") -> None:
        """Raise ConfigError for options the KoLeo loss cannot use or would ignore (pretraining and distillation).

        `prefix` is where the section's parent sits in the config (`ssl.` in pretraining, none in distillation)."""
        k = f"{prefix}koleo"
        if self.topk < 1:
            raise ConfigError(f"{k}.topk={self.topk} must be >= 1")
        if not self.distributed and self.topk != 1:
            raise ConfigError(f"{k}.topk > 1 needs {k}.distributed=true (as official)")
        if self.group_size is not None and self.group_size < 2:
            raise ConfigError(f"{k}.group_size={self.group_size} must be >= 2 (or null for the whole batch)")
        if self.group_size is not None and not self.distributed:
            # it would be ignored: the plain loss (official KoLeoLoss) runs over each process's batch of each crop
            raise ConfigError(
                f"{k}.group_size={self.group_size} needs {k}.distributed=true (KoLeo over groups of the "
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

    def validate(self, prefix: str = "") -> None:
        """Raise ConfigError naming the key for values the recipe cannot use.

        `prefix` is where this section sits in the user's config (`ssl.` in pretraining), so the message names
        the key as the user writes it."""
        p = prefix
        for name, sec in (("dino", self.dino), ("ibot", self.ibot)):
            if sec.centering not in ("sinkhorn_knopp", "centering"):
                raise ConfigError(f"{p}{name}.centering={sec.centering!r} must be 'sinkhorn_knopp' or 'centering'")
            if sec.head_last_layer not in ("linear", "weight_norm", "normalized"):
                raise ConfigError(
                    f"{p}{name}.head_last_layer={sec.head_last_layer!r} must be 'linear' (DINOv3), 'weight_norm' "
                    "(DINOv2) or 'normalized' (DINO v1, unit prototypes)"
                )
            if sec.head_n_prototypes < 1 or sec.head_bottleneck_dim < 1 or sec.head_hidden_dim < 1:
                raise ConfigError(f"{p}{name}.head_* sizes must be positive")
        if len(self.ibot.mask_ratio_min_max) != 2:  # unpacked below: a ValueError traceback before
            raise ConfigError(
                f"{p}ibot.mask_ratio_min_max={list(self.ibot.mask_ratio_min_max)} must be two numbers [min, max] "
                "(official: [0.1, 0.5])"
            )
        lo, hi = self.ibot.mask_ratio_min_max
        if not 0 <= lo < hi <= 1:
            raise ConfigError(f"{p}ibot.mask_ratio_min_max={[lo, hi]} must satisfy 0 <= min < max <= 1")
        if not 0 <= self.ibot.mask_sample_probability <= 1:
            raise ConfigError(f"{p}ibot.mask_sample_probability={self.ibot.mask_sample_probability} must be in [0, 1]")
        g = self.gram
        if g.tokens_used not in ("all", "masked", "unmasked"):
            raise ConfigError(f"{p}gram.tokens_used={g.tokens_used!r} must be 'all', 'masked' or 'unmasked'")
        if g.tokens_used != "all" and g.img_level:
            raise ConfigError(f"{p}gram.tokens_used='masked'/'unmasked' needs {p}gram.img_level=false (as official)")
        if g.remove_neg and g.remove_only_teacher_neg:
            raise ConfigError(f"{p}gram.remove_neg and {p}gram.remove_only_teacher_neg are exclusive; set one to false")
        if g.ema_teacher and g.ckpt:
            raise ConfigError(f"{p}gram.ema_teacher=true and {p}gram.ckpt are exclusive; use one Gram teacher source")
        if g.ema_teacher and g.rep_update:
            raise ConfigError(
                f"{p}gram.ema_teacher=true needs {p}gram.rep_update=false (the EMA teacher is always current)"
            )
        if g.update_frequency < 1:
            raise ConfigError(f"{p}gram.update_frequency={g.update_frequency} must be >= 1")
        if g.resize_method not in ("bicubic", "bilinear", "nearest", "area"):
            raise ConfigError(f"{p}gram.resize_method={g.resize_method!r} must be bicubic, bilinear, nearest or area")
        if self.schedules.kind not in ("v1", "v2"):
            raise ConfigError(f"{p}schedules.kind={self.schedules.kind!r} must be 'v1' or 'v2'")
        self.koleo.validate(p)
        if self.optim.scaling_rule not in ("sqrt_wrt_1024", "linear_wrt_256", "none"):
            raise ConfigError(
                f"{p}optim.scaling_rule={self.optim.scaling_rule!r} must be sqrt_wrt_1024, linear_wrt_256 or none"
            )
        check_ranges(self, prefix)


def _in_range(
    key: str, value: float, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, why: str = ""
) -> None:
    """ConfigError naming `key` unless `value` is a finite number in the interval (NaN passes no comparison, so
    it is refused explicitly: a NaN lr trained a few steps before the loss check stopped the run)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        span = f">= {lo:g}" if hi == math.inf else f"in {left}{lo:g}, {hi:g}{right}"
        span = f"> {lo:g}" if lo_open and hi == math.inf else span
        raise ConfigError(f"{key}={value!r} must be a number {span}" + (f": {why}" if why else ""))


def check_ranges(cfg: SSLConfig, prefix: str = "") -> None:
    """Refuse recipe values outside their meaningful range, one line naming the key: before, a negative lr trained
    (gradient ascent: DINO loss 6.4 -> 7.6 in 3 steps), momentum 1.5 or a negative weight decay ran silently, and
    adamw_beta2=1.0 ended in a torch traceback."""
    p, inf = prefix, math.inf
    s = cfg.schedules
    for name, sc in (
        ("lr", s.lr),
        ("weight_decay", s.weight_decay),
        ("momentum", s.momentum),
        ("teacher_temp", s.teacher_temp),
    ):
        for part in ("start", "peak", "end"):
            key, v = f"{p}schedules.{name}.{part}", getattr(sc, part)
            if name == "momentum":
                _in_range(key, v, 0.0, 1.0, why="the teacher keeps this share of its weights each step")
            elif name == "teacher_temp":
                _in_range(key, v, 0.0, inf, lo_open=True, why="the teacher's softmax divides by it")
            else:
                _in_range(key, v, 0.0, inf)
        _in_range(f"{p}schedules.{name}.trunc_extra", sc.trunc_extra, 0.0, inf)
    o = cfg.optim
    _in_range(f"{p}optim.adamw_beta1", o.adamw_beta1, 0.0, 1.0, hi_open=True)
    _in_range(f"{p}optim.adamw_beta2", o.adamw_beta2, 0.0, 1.0, hi_open=True)
    _in_range(f"{p}optim.clip_grad", o.clip_grad, 0.0, inf, why="0 turns clipping off")
    _in_range(
        f"{p}optim.layerwise_decay",
        o.layerwise_decay,
        0.0,
        1.0,
        lo_open=True,
        why="block i gets lr x rate^(depth-i); 1.0 turns the decay off",
    )
    _in_range(f"{p}optim.patch_embed_lr_mult", o.patch_embed_lr_mult, 0.0, inf)
    _in_range(f"{p}optim.dino_head_wd_multiplier", o.dino_head_wd_multiplier, 0.0, inf)
    _in_range(f"{p}student.drop_path_rate", cfg.student.drop_path_rate, 0.0, 1.0, hi_open=True)
    for name, v in (("patch_size", cfg.student.patch_size), ("in_chans", cfg.student.in_chans)):
        if v < 1:
            raise ConfigError(f"{p}student.{name}={v} must be >= 1")
    for name, sec in (("dino", cfg.dino), ("ibot", cfg.ibot)):
        _in_range(f"{p}{name}.loss_weight", sec.loss_weight, 0.0, inf, why="0 turns the loss off")
        _in_range(
            f"{p}{name}.student_temp",
            sec.student_temp,
            0.0,
            inf,
            lo_open=True,
            why="the student's softmax divides by it",
        )
        _in_range(f"{p}{name}.center_momentum", sec.center_momentum, 0.0, 1.0)
        if sec.head_nlayers < 1:
            raise ConfigError(f"{p}{name}.head_nlayers={sec.head_nlayers} must be >= 1")
        if sec.centering == "sinkhorn_knopp" and sec.sinkhorn_iterations < 1:
            raise ConfigError(f"{p}{name}.sinkhorn_iterations={sec.sinkhorn_iterations} must be >= 1 (official: 3)")
    for name in ("local_loss_weight", "local_loss_weight_initial"):
        _in_range(f"{p}dino.{name}", getattr(cfg.dino, name), 0.0, inf)
    _in_range(f"{p}koleo.loss_weight", cfg.koleo.loss_weight, 0.0, inf, why="0 turns the loss off")
    _in_range(f"{p}gram.loss_weight", cfg.gram.loss_weight, 0.0, inf, why="0 turns the loss off")
    _check_counters(cfg, p)


def _check_counters(cfg: SSLConfig, p: str) -> None:
    """The Gram refresh counters and the monitor thresholds: before, gram.max_updates=-1 silently never refreshed,
    monitor.entropy_tol=nan never warned and 0.6 flagged every entropy, and monitor.every=-1 ran every step."""
    g, m, inf = cfg.gram, cfg.monitor, math.inf
    for name in ("it_load_ema_teacher", "it_first_update"):
        _in_range(f"{p}gram.{name}", getattr(g, name), 0.0, inf, why="an iteration of the stage")
    if g.max_updates is not None:
        _in_range(f"{p}gram.max_updates", g.max_updates, 0.0, inf, why="null for no limit")
    _in_range(f"{p}monitor.every", m.every, 0.0, inf, why="0 turns the monitors off")
    _in_range(f"{p}monitor.patience", m.patience, 1.0, inf, why="consecutive collapsed checks before the warning")
    _in_range(
        f"{p}monitor.entropy_tol",
        m.entropy_tol,
        0.0,
        0.5,
        hi_open=True,
        why="a fraction of ln K: from 0.5 up every entropy reads as one-hot or uniform",
    )
    _in_range(f"{p}monitor.std_tol", m.std_tol, 0.0, inf, why="a fraction of the healthy 1/sqrt(D)")
