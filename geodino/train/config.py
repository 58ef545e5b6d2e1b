"""Config schemas of a pretraining stage (`PretrainConfig` and its `trainer` and `checkpoint` sections).

Kept apart from `geodino.train.pretrain` (which runs a stage) and `geodino.train.module` (the Lightning module),
so that reading or describing a config (the CLI's `--help`) imports no torch and neither runner imports the
other. The recipe sections (`ssl.*`) are in `geodino.train.recipe`, the data sections in `geodino.data.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geodino.data.config import CropsConfig, DataConfig
from geodino.errors import ConfigError
from geodino.train.recipe import SSLConfig

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "CheckpointConfig",
    "PretrainConfig",
    "TrainerConfig",
    "check_crops",
    "refuse_bf16_true",
]

STRATEGIES = ("auto", "single", "ddp", "ddp_spawn", "fsdp2")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
# Lightning's names geodino runs on (TPUs need torch_xla and are not tested: refused with the rest)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision's
FSDP_DTYPES = ("bfloat16", "float16", "float32")


def refuse_bf16_true(precision: str, key: str) -> None:
    """One line for `bf16-true`: Lightning casts the whole module to bfloat16, teacher included, so the EMA lerp
    (1 - momentum <= 0.004) rounds back to the old weights (a frozen teacher) and small AdamW steps vanish."""
    if precision == "bf16-true":
        raise ConfigError(
            f"{key}=bf16-true keeps the weights in bfloat16, where the EMA update (1 - momentum <= 0.004) and small "
            f"optimizer steps round away to nothing; use {key}=bf16-mixed (bfloat16 compute, float32 weights)"
        )


@dataclass
class TrainerConfig:
    """How to run: devices, strategy, precision, logging (the recipe itself is in `ssl`)."""

    max_steps: int = 1000  # total optimizer steps of this stage (schedules are indexed 0 .. max_steps-1)
    accelerator: str = "auto"  # auto | cpu | gpu (= cuda) | mps
    devices: int = 1  # devices per node (-1: all visible)
    num_nodes: int = 1  # >1 on SLURM: srun --ntasks-per-node=devices
    strategy: str = "auto"  # auto (single device or ddp) | single | ddp | ddp_spawn | fsdp2
    # auto = bf16-mixed on GPUs with native bf16, 16-mixed on older ones (V100, T4), 32-true on CPUs (float32 is
    # the faithful reference; measured on this project's 2-core AVX-512 BF16 CPU, torch 2.14: bf16-mixed runs the
    # small recipe at 0.74 s/step vs 0.81, too little to give that up) | 32-true | bf16-mixed | 16-mixed (bf16-true
    # refused: refuse_bf16_true); fsdp2: its own policy
    precision: str = "auto"
    fsdp_param_dtype: str = "bfloat16"  # FSDP2 MixedPrecisionPolicy: compute/parameter dtype
    fsdp_reduce_dtype: str = "float32"  # FSDP2 gradient reduction dtype (official: fp32)
    fsdp_reshard_after_forward: bool = True  # free gathered weights after forward (ZeRO-3); False = ZeRO-2
    # fsdp2: build student, teacher and Gram teacher on the meta device, shard, then allocate and initialise
    # only each rank's shards (no full copy in host RAM: needed for 7B); init_from is applied after that
    meta_init: bool = False
    find_unused_parameters: bool = False  # DDP: set True if some student parameter gets no gradient
    compile: bool = False  # torch.compile each transformer block (GPU)
    # off | selective (official train.checkpointing: keep matmul and attention outputs, recompute the rest) | full
    # (recompute whole student blocks): less activation memory for some recomputation (train.activation_checkpointing)
    activation_checkpointing: str = "off"
    log_every_n_steps: int = 10
    progress_bar: bool = True
    # csv | tensorboard | wandb | mlflow (the last two: pip install 'geodino[tracking]'); see geodino.train.loggers
    loggers: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])
    # keyword arguments of each Lightning logger, e.g. {wandb: {project: geo, offline: true}}
    logger_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    float32_matmul_precision: str = "high"  # TF32 on Ampere+ GPUs
    slurm_auto_requeue: bool = True  # on SLURM, save and requeue on SIGUSR1 (sbatch --signal=SIGUSR1@120)
    # FIRST-LAST (e.g. 20-24): torch.profiler over those global steps on rank 0; prints s/step, device busy,
    # kernel launches and host syncs per step, writes a trace + top-ops table to <output_dir>/profile/ ('' = off)
    profile_steps: str = ""

    def validate(self) -> None:
        from geodino.errors import did_you_mean

        # Lightning refused these with a traceback, after the run folder was made
        if self.accelerator not in ACCELERATORS:
            close = did_you_mean(str(self.accelerator).lower(), ACCELERATORS)
            hint = f" (did you mean {close[0]}?)" if close else ""
            if str(self.accelerator).lower() == "tpu":
                hint = " (TPUs need torch_xla, which geodino is not tested with)"
            raise ConfigError(f"trainer.accelerator={self.accelerator!r} is not one of {', '.join(ACCELERATORS)}{hint}")
        for key, low in (("devices", -1), ("num_nodes", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and not value == low == -1):
                want = "-1 (every visible GPU) or a whole number >= 1" if low == -1 else "a whole number >= 1"
                raise ConfigError(f"trainer.{key}={value!r} must be {want}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"trainer.strategy={self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.float32_matmul_precision not in MATMUL_PRECISIONS:  # torch only warned, and ran at "highest"
            raise ConfigError(
                f"trainer.float32_matmul_precision={self.float32_matmul_precision!r} is not one of "
                f"{', '.join(MATMUL_PRECISIONS)}"
            )
        for key in ("fsdp_param_dtype", "fsdp_reduce_dtype"):  # read only under fsdp2: checked before any run
            if getattr(self, key) not in FSDP_DTYPES:
                raise ConfigError(f"trainer.{key}={getattr(self, key)!r} is not one of {', '.join(FSDP_DTYPES)}")
        refuse_bf16_true(self.precision, "trainer.precision")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"trainer.precision={self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.max_steps < 1:
            raise ConfigError(f"trainer.max_steps={self.max_steps} must be >= 1")
        if str(self.profile_steps).strip():  # checked here so a bad range fails before the run starts
            from geodino.train.profiling import parse_steps

            parse_steps(self.profile_steps, self.max_steps)
        from geodino.train.activation_checkpointing import check_mode

        self.activation_checkpointing = check_mode(self.activation_checkpointing, "trainer.activation_checkpointing")
        if self.meta_init and self.strategy != "fsdp2":
            raise ConfigError("trainer.meta_init=true needs trainer.strategy=fsdp2 (only FSDP2 shards before init)")
        from geodino.train.loggers import check_loggers

        check_loggers(self.loggers, self.logger_options, "trainer.loggers")


def check_seed(value: int, key: str) -> None:
    """A seed numpy and torch both take (0 .. 2**32 - 1): a negative one stopped the run in numpy with `ValueError:
    expected non-negative integer` and a traceback, after the run folder was made."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ConfigError(f"{key}={value!r} must be a whole number from 0 to 4294967295")


def check_keep_last(value: int, key: str) -> None:
    """`keep_last` must be 0 (keep every step checkpoint) or N >= 1 (keep the newest N): a negative value kept every
    checkpoint silently, so a typo for a small number filled the disk."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"{key}={value!r} must be 0 (keep every step checkpoint) or a whole number N >= 1 (keep the newest N)"
        )


@dataclass
class CheckpointConfig:
    """When and how checkpoints are written, and what to resume from."""

    every_n_steps: int = 1000  # write runs/NAME/checkpoints/step_XXXXXXXX.ckpt every N steps (and at the end)
    keep_last: int = 3  # the newest N step checkpoints are kept, older ones deleted (0 keeps all; < 0 is refused)
    sharded: bool = False  # fsdp2: each rank writes its shard (a folder); False gathers one file on rank 0
    resume: str = "auto"  # auto (newest checkpoint of output_dir, if any) | never | PATH of a checkpoint
    export_at_end: bool = True  # write runs/NAME/export/teacher.{pth,safetensors,heads.pth} when done

    def validate(self) -> None:
        if self.every_n_steps < 1:
            raise ConfigError(f"checkpoint.every_n_steps={self.every_n_steps} must be >= 1")
        check_keep_last(self.keep_last, "checkpoint.keep_last")


def check_crops(crops: CropsConfig, ssl: SSLConfig) -> None:
    """Crop settings that pretraining cannot use, one line naming the key (before: `crops.global_size=0` and
    `crops.n_local=-1` ended in a traceback or ran with no local crops, `crops.local_size` above the global size
    ran silently, and `crops.mask_ratio`/`crops.mask_probability` were silently replaced by the recipe's iBOT
    settings)."""
    if crops.n_local < 0:
        raise ConfigError(f"crops.n_local={crops.n_local} must be >= 0 (official: 8 local crops; 0 turns them off)")
    patch = ssl.student.patch_size
    sets = [("crops.", crops)] + [(f"crops.crop_sets[{i}].", c) for i, c in enumerate(crops.crop_sets)]
    for where, c in sets[1:] if crops.crop_sets else sets[:1]:
        for name in ("global_size", "local_size"):
            v = getattr(c, name)
            if v < patch:
                raise ConfigError(
                    f"{where}{name}={v} is smaller than one patch (ssl.student.patch_size={patch}); use a multiple "
                    f"of {patch} (official: global 224, local 96 at patch 16)"
                )
        if crops.n_local and c.local_size > c.global_size:
            raise ConfigError(
                f"{where}local_size={c.local_size} is larger than {where}global_size={c.global_size}: local crops are "
                "the small views (official 96 vs 224 px); swap the two or lower local_size"
            )
    defaults = CropsConfig()
    for key, recipe_key, value, own in (
        ("mask_ratio", "mask_ratio_min_max", list(crops.mask_ratio), list(ssl.ibot.mask_ratio_min_max)),
        ("mask_probability", "mask_sample_probability", crops.mask_probability, ssl.ibot.mask_sample_probability),
    ):
        if value != getattr(defaults, key) and value != own:
            raise ConfigError(
                f"crops.{key}={value} is not read by pretraining, whose iBOT masks follow ssl.ibot.{recipe_key} "
                f"(now {own}); set ssl.ibot.{recipe_key}={value} instead"
            )


@dataclass
class PretrainConfig:
    """A pretraining stage: the recipe (`ssl`), the data and crops, how to run it and where to write it."""

    name: str = "pretrain"
    output_dir: str = "runs/pretrain"  # run folder: config.yaml, checkpoints/, logs/, tensorboard/, export/
    seed: int = 0
    batch_size: int = 64  # per device; the global batch is batch_size x devices x nodes
    num_workers: int = 4  # data-loading processes per device
    init_from: str | None = None  # previous stage's checkpoint/export, or an official backbone (.pth/.safetensors)
    init_student_from: str = "teacher"  # teacher (official high-res stage) | student (continue the same student)
    # heads-only iterations (backbone frozen), or a fraction of the run; use ~1000 (or 0.1) when init_from has no heads
    head_warmup_steps: int | float = 0
    ssl: SSLConfig = field(default_factory=SSLConfig)
    data: DataConfig = field(default_factory=DataConfig)
    crops: CropsConfig = field(default_factory=CropsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def validate(self) -> None:
        """Cross-section checks, each naming its key."""
        self.ssl.validate(prefix="ssl.")  # messages name ssl.* keys, as the user writes them
        for sec in (self.data, self.crops, self.trainer, self.checkpoint):
            v = getattr(sec, "validate", None)
            if callable(v):
                v()
        check_crops(self.crops, self.ssl)
        check_seed(self.seed, "seed")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be >= 1")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers={self.num_workers} must be >= 0")
        if self.init_student_from not in ("teacher", "student"):
            raise ConfigError(f"init_student_from={self.init_student_from!r} must be 'teacher' or 'student'")
        from geodino.train.schedules import resolve_iters

        warm = resolve_iters(self.head_warmup_steps, self.trainer.max_steps, "head_warmup_steps")
        if warm >= self.trainer.max_steps:
            raise ConfigError(
                f"head_warmup_steps={self.head_warmup_steps} must be >= 0 and below trainer.max_steps="
                f"{self.trainer.max_steps}"
            )
        if not self.output_dir:
            raise ConfigError("output_dir is empty; set output_dir=runs/NAME")
