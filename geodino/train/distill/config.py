"""Config schema of `geodino distill` (`DistillConfig`): teacher, students, recipe sections, data, run settings.

Torch-free, so reading or describing a distillation config (the CLI's `--help`) stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from geodino.data.config import CropsConfig, DataConfig
from geodino.errors import ConfigError, did_you_mean
from geodino.train.recipe import DinoConfig, IbotConfig, KoLeoConfig, OptimConfig, ScheduleConfig, SchedulesConfig

__all__ = ["DistillConfig", "DistillTrainConfig", "StudentSpec", "TeacherConfig"]


@dataclass
class TeacherConfig:
    """The frozen teacher: a backbone spec and, optionally, its heads."""

    spec: str = "arch:vit_small?seed=0"  # any load_backbone spec: .pth/.safetensors/export/checkpoint, arch:, HF dir
    heads: str = ""  # a *.heads.pth / teacher_checkpoint.pth; empty: from the spec file if it has heads, else warm-up
    head_warmup_steps: int = 300  # heads-only SSL steps on the frozen teacher when no heads exist
    head_warmup_lr: float = 1e-3  # AdamW peak lr of the warm-up (10 % linear warm-up, none < 10 steps; cosine to 1 %)
    # constant, as the official distillation's teacher temperature (its v2 `schedules.teacher_temp` has
    # warmup_epochs 0: 0.07 at every step), the temperature these heads' targets are then read at
    head_warmup_teacher_temp: float = 0.07
    head_warmup_momentum: list[float] = field(default_factory=lambda: [0.994, 1.0])  # EMA heads: start -> end
    # inference path of the frozen teacher (heads warm-up and every step): auto | off | float32 | float32-ieee |
    # float32-mkl | bfloat16 | int8 (geodino.models.frozen; auto: bf16 weights under train.precision=bf16-mixed,
    # else float32, compiled when the run is long enough to repay the warm-up). GEODINO_FAST=0 also turns it off.
    fast: str = "auto"


@dataclass
class StudentSpec:
    """One student. Prototype counts and patch size default to the teacher's and must equal them."""

    name: str = "vits"
    arch: str = "vit_small"  # geodino.models.archs.ARCHS name
    patch_size: int | None = None  # None: the teacher's
    drop_path_rate: float = 0.1
    overrides: dict[str, Any] = field(default_factory=dict)  # extra build_model kwargs (ffn_layer, depth, ...)
    ranks: list[int] | None = None  # [start, end): the ranks training this student (several processes)
    share: float | None = None  # or a relative share of the ranks
    init_from: str = ""  # optional backbone weights to start from (any checkpoint/export/official file)
    dino_head_n_prototypes: int | None = None  # None: the teacher's
    ibot_head_n_prototypes: int | None = None
    head_hidden_dim: int | None = None  # None: the teacher head's
    head_bottleneck_dim: int | None = None


@dataclass
class DistillTrainConfig:
    """How long and where: steps, batch, device, precision, checkpoints, logs."""

    max_steps: int = 1000
    global_batch_size: int = 64  # images per step over all ranks (official ViT-L recipe: 1920)
    num_workers: int = 2  # data-loading processes per rank
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "32-true"  # 32-true | bf16-mixed (autocast)
    # off | selective | full: recompute student block activations in backward (see trainer.activation_checkpointing)
    activation_checkpointing: str = "off"
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 1000
    keep_last: int = 2  # the newest N checkpoints of each student are kept (0 keeps all; < 0 is refused)
    resume: str = "auto"  # auto (newest checkpoint of output_dir) | never
    # on SLURM, save and requeue on SIGUSR1 (sbatch --signal=SIGUSR1@120), as pretraining's trainer.slurm_auto_requeue
    slurm_auto_requeue: bool = True
    export: str = "ema"  # ema (official: the student's EMA is dumped) | student
    progress_bar: bool = True
    # csv (the run's log.csv, always written) | tensorboard | wandb | mlflow (pip install 'geodino[tracking]')
    loggers: list[str] = field(default_factory=lambda: ["csv"])
    # keyword arguments of each Lightning logger, e.g. {wandb: {project: geo, offline: true}}
    logger_options: dict[str, dict[str, Any]] = field(default_factory=dict)


# the official ViT-L distillation ramps the lr over its first 10 of 20 epochs (`cosine_epochs: 10`), then holds it
DEFAULT_LR_COSINE = 0.5


def _distill_schedules() -> SchedulesConfig:
    """Official ViT-L multi-distillation schedule shapes (v2): lr 0 -> 5e-5 as a cosine ramp over the first half of
    the run, then constant (official: 10 of 20 epochs), momentum 0.994 -> 1 (cosine), teacher temperature 0.07,
    weight decay 0.04."""
    return SchedulesConfig(
        kind="v2",
        lr=ScheduleConfig(start=0.0, peak=0.0, end=5e-5, warmup_iters=0, cosine_iters=DEFAULT_LR_COSINE),
        weight_decay=ScheduleConfig(0.04, 0.04, 0.04),
        momentum=ScheduleConfig(0.994, 0.994, 1.0),
        teacher_temp=ScheduleConfig(0.07, 0.07, 0.07),
    )


@dataclass
class DistillConfig:
    """Everything `geodino distill` reads (YAML + dotted overrides)."""

    output_dir: str = "runs/distill"
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    students: list[StudentSpec] = field(default_factory=lambda: [StudentSpec()])
    dino: DinoConfig = field(default_factory=DinoConfig)  # loss weight, temperatures; head_* size warm-up heads
    ibot: IbotConfig = field(default_factory=IbotConfig)  # loss weight; positions come from crops.mask_*
    koleo: KoLeoConfig = field(default_factory=KoLeoConfig)
    # the official distillation's optimiser: LLRD 0.99, clip 3, no frozen prototypes, lr x 4*sqrt(B/1024)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            layerwise_decay=0.99, freeze_last_layer_iters=0, clip_grad=3.0, scaling_rule="sqrt_wrt_1024"
        )
    )
    schedules: SchedulesConfig = field(default_factory=_distill_schedules)
    data: DataConfig = field(default_factory=DataConfig)  # sources, sensor, bands (as pretraining)
    crops: CropsConfig = field(default_factory=CropsConfig)  # crop sizes/augmentations; mask_* = iBOT positions
    train: DistillTrainConfig = field(default_factory=DistillTrainConfig)

    def validate(self) -> None:
        """Raise ConfigError naming the key for values that cannot work (called by load_config)."""
        names = [s.name for s in self.students]
        if not names:
            raise ConfigError(
                "students is empty; list at least one student, e.g. students=[{name: vits, arch: vit_small}]"
            )
        for i, n in enumerate(names):
            if not n or not n.replace("_", "").replace("-", "").isalnum():
                raise ConfigError(f"students[{i}].name={n!r} must be a non-empty name of letters, digits, - and _")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"students have duplicate names {dup}; give each student its own name")
        from geodino.train.activation_checkpointing import check_mode

        self.train.activation_checkpointing = check_mode(
            self.train.activation_checkpointing, "train.activation_checkpointing"
        )
        from geodino.models.archs import ARCHS

        for i, s in enumerate(self.students):
            if s.arch not in ARCHS:
                close = did_you_mean(s.arch, ARCHS)
                hint = f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(ARCHS)}"
                raise ConfigError(f"students[{i}].arch={s.arch!r} is not a known architecture{hint}")
        _check_placement(self.students)
        _refuse_pretraining_mask_keys(self.ibot)
        _refuse_pretraining_head_keys(self)
        self.koleo.validate()
        _check_ranges(self)
        if self.train.max_steps < 1:
            raise ConfigError(f"train.max_steps={self.train.max_steps} must be >= 1")
        for key in ("log_every_n_steps", "checkpoint_every_n_steps"):  # 0 stopped the first step on `step % 0`
            if getattr(self.train, key) < 1:
                raise ConfigError(f"train.{key}={getattr(self.train, key)} must be >= 1 (a step count)")
        if self.train.global_batch_size < 2:
            raise ConfigError(
                f"train.global_batch_size={self.train.global_batch_size} must be >= 2 (KoLeo needs pairs)"
            )
        from geodino.train.config import refuse_bf16_true

        refuse_bf16_true(self.train.precision, "train.precision")
        if self.train.precision not in ("32-true", "bf16-mixed"):
            raise ConfigError(f"train.precision={self.train.precision!r} must be 32-true or bf16-mixed")
        if self.train.export not in ("ema", "student"):
            raise ConfigError(f"train.export={self.train.export!r} must be 'ema' or 'student'")
        from geodino.train.config import check_keep_last, check_seed

        check_keep_last(self.train.keep_last, "train.keep_last")
        check_seed(self.train.seed, "train.seed")
        if isinstance(self.train.num_workers, bool) or self.train.num_workers < 0:
            raise ConfigError(f"train.num_workers={self.train.num_workers!r} must be >= 0")
        if self.train.resume not in ("auto", "never"):
            raise ConfigError(f"train.resume={self.train.resume!r} must be 'auto' or 'never'")
        if self.train.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device={self.train.device!r} must be auto, cpu or cuda")
        from geodino.train.loggers import check_loggers

        check_loggers(self.train.loggers, self.train.logger_options, "train.loggers")
        from geodino.models.frozen import env_mode, fast_mode

        self.teacher.fast = fast_mode(self.teacher.fast, "teacher.fast")  # YAML's `off` arrives as 'False'
        env_mode()  # a bad GEODINO_FAST fails here, before the run folder is made, not after the teacher is loaded
        if self.teacher.head_warmup_steps < 0:
            raise ConfigError(f"teacher.head_warmup_steps={self.teacher.head_warmup_steps} must be >= 0")
        if self.schedules.kind not in ("v1", "v2"):
            raise ConfigError(f"schedules.kind={self.schedules.kind!r} must be 'v1' or 'v2'")
        _check_lr_cosine(self.schedules.lr.cosine_iters)
        for sec in (self.data, self.crops):
            v = getattr(sec, "validate", None)
            if callable(v):
                v()
        if getattr(self.crops, "mask_probability", 1.0) <= 0:
            raise ConfigError("crops.mask_probability must be > 0: the masks pick the patch-distillation positions")
        if getattr(self.crops, "gram", False):
            raise ConfigError("crops.gram=true: distillation has no Gram term; set crops.gram=false")


def recipe_view(cfg: DistillConfig) -> Any:
    """The pretraining recipe (`SSLConfig`) a distillation config's dino/ibot/koleo/optim/schedules sections make:
    one view for the schedules (`build.build_schedules`) and the range checks, so both read the same values."""
    from geodino.train.recipe import GramConfig, SSLConfig

    return SSLConfig(
        dino=cfg.dino,
        ibot=cfg.ibot,
        koleo=cfg.koleo,
        gram=GramConfig(use_loss=False),
        optim=cfg.optim,
        schedules=cfg.schedules,
    )


def _check_ranges(cfg: DistillConfig) -> None:
    """Pretraining's recipe checks (`SSLConfig.validate`, with `recipe.check_ranges`) on the recipe sections
    distillation builds its schedules and losses from, plus the student and heads warm-up values, one line naming
    the key as a distillation config spells it. Before, `build_schedules` built its SSLConfig unvalidated, so a
    negative lr, momentum 1.5, a negative loss weight or `optim.adamw_beta2=1.0` ran silently or in a traceback."""
    from geodino.train.recipe import _in_range

    ssl = recipe_view(cfg)  # what build.build_schedules builds from; its student / gram sections are defaults
    ssl.validate(prefix="")  # distillation's keys are top-level: schedules.lr.peak, dino.loss_weight, optim.*
    for i, s in enumerate(cfg.students):
        _in_range(f"students[{i}].drop_path_rate", s.drop_path_rate, 0.0, 1.0, hi_open=True)
    t = cfg.teacher
    _in_range("teacher.head_warmup_lr", t.head_warmup_lr, 0.0, math.inf)
    _in_range(
        "teacher.head_warmup_teacher_temp",
        t.head_warmup_teacher_temp,
        0.0,
        math.inf,
        lo_open=True,
        why="the teacher's softmax divides by it",
    )
    mom = list(t.head_warmup_momentum)
    ok = len(mom) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1 for v in mom)
    if not ok:
        raise ConfigError(
            f"teacher.head_warmup_momentum={mom} must be two numbers [start, end] in [0, 1]: the EMA heads keep "
            "this share of their weights each step"
        )


def _check_placement(students: list[StudentSpec]) -> None:
    """`students[i].ranks` / `.share` values, checked when the config loads. A run on one process ignores them (its
    students share the process), so `share: -1` or `ranks: [3, 1]` passed a one-process trial and was refused only
    once the multi-GPU job started; the messages are `subgroups.plan_subgroups`'s, which checks them against the
    world (coverage, overlap, batch split)."""
    for i, s in enumerate(students):
        if s.ranks not in (None, [], ()):
            r = list(s.ranks) if isinstance(s.ranks, (list, tuple)) else [s.ranks]
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in r)
            if len(r) != 2 or not whole or not 0 <= r[0] < r[1]:
                raise ConfigError(
                    f"students[{i}].ranks={r} ({s.name}) must be [start, end] with 0 <= start < end (end excluded)"
                )
        if s.share not in (None, 0):
            v = s.share
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise ConfigError(f"students[{i}].share={v} ({s.name}) must be a positive number")


def _check_lr_cosine(value: Any) -> None:
    """`schedules.lr.cosine_iters`: a fraction of the run in (0, 1] (default 0.5: the official ramp over the first
    half), a step count >= 0 (0: no ramp, the lr starts at its end value), or null (the whole run). A float outside
    (0, 1] is neither a fraction nor clearly a step count. That the steps fit the run is checked with the schedules
    (`schedules.reference_iters` may rescale a step count)."""
    key = f"schedules.lr.cosine_iters={value!r}"
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} is not a length: write a fraction of the run in (0, 1] or a step count")
    if isinstance(value, float) and not 0.0 < value <= 1.0:
        raise ConfigError(
            f"{key} is not a fraction of the run in (0, 1] (0.5: the official ramp over the first half); "
            "write a fraction, or an integer step count (0: no ramp)"
        )
    if isinstance(value, int) and value < 0:
        raise ConfigError(f"{key} must be a step count >= 0 or a fraction of the run in (0, 1]")


# pretraining's iBOT mask keys (ssl.ibot.*), which distillation does not read, and the crops keys it reads instead
_PRETRAINING_MASK_KEYS = {"mask_sample_probability": "mask_probability", "mask_ratio_min_max": "mask_ratio"}


def _refuse_pretraining_mask_keys(ibot: IbotConfig) -> None:
    """`ibot.mask_sample_probability` / `ibot.mask_ratio_min_max` are in the schema (it is pretraining's iBOT
    section) but distillation draws its iBOT positions from `crops.mask_*`: a value other than the default would
    change nothing, so it is refused naming the key to set. The defaults pass, so old run folders' config.yaml
    files (which list them) still load."""
    default = IbotConfig()
    for key, crops_key in _PRETRAINING_MASK_KEYS.items():
        got, want = getattr(ibot, key), getattr(default, key)
        try:
            same = [float(v) for v in got] == want if isinstance(want, list) else float(got) == want
        except (TypeError, ValueError):
            same = False
        if not same:
            raise ConfigError(
                f"ibot.{key}={got} is not read by distillation, whose iBOT positions come from crops.mask_*; set "
                f"crops.{crops_key}={got} instead (and leave ibot.{key} at its default {want})"
            )


def _refuse_pretraining_head_keys(cfg: DistillConfig) -> None:
    """`dino.*` / `ibot.*` keys of pretraining's recipe that distillation has no use for, refused when set: the
    teacher targets are always Sinkhorn-Knopp (as in official distillation; mean centering's running centre is not
    part of a distillation checkpoint), and student and warmed-up heads have a linear prototype layer. Their
    defaults pass, so old run folders' config.yaml files (which list them) still load."""
    dino, ibot = DinoConfig(), IbotConfig()
    for name, sec, default in (("dino", cfg.dino, dino), ("ibot", cfg.ibot, ibot)):
        if sec.centering != default.centering:
            raise ConfigError(
                f"{name}.centering={sec.centering!r} is not read by distillation: its teacher targets are always "
                f"Sinkhorn-Knopp (as official distillation); tune {name}.sinkhorn_iterations, or remove the key"
            )
        if float(sec.center_momentum) != default.center_momentum:
            raise ConfigError(
                f"{name}.center_momentum={sec.center_momentum} is not read by distillation (it is for "
                f"{name}.centering=centering in pretraining); remove the key"
            )
        if sec.head_last_layer != default.head_last_layer:
            raise ConfigError(
                f"{name}.head_last_layer={sec.head_last_layer!r} is not read by distillation: student heads and "
                "warmed-up teacher heads have a linear prototype layer (DINOv3), a teacher's own heads keep theirs; "
                "remove the key"
            )
