"""`geodino distill`: distil a frozen teacher (yours or an official DINOv3 release) into one or more smaller ViTs.

    geodino distill --config configs/distill/vitl_to_vits.yaml train.max_steps=100

What happens (docs/distillation.md has the guide):

1. The teacher backbone is loaded from any `geodino.backbones.load_backbone` spec and frozen. Its DINO/iBOT
   heads come from `teacher.heads`, or from the teacher file itself (a geodino checkpoint/export with heads, an
   official `teacher_checkpoint.pth`); when there are none (official releases), fresh heads are trained in a
   short heads-only warm-up on the frozen teacher (`geodino.train.teacher_heads`) and saved as
   `OUTPUT/teacher.heads.pth`.
2. Every student (`students: [{name, arch, ...}]`) is built with the teacher's patch size and prototype counts.
3. Training: DINO + iBOT patch distillation (students get unmasked crops) + KoLeo, as the official
   `MultiDistillationMetaArch`. One teacher forward per step serves every student on a device; with several
   processes each student owns a rank range and a process subgroup (`geodino.train.subgroups`).
4. Each student's EMA is exported in the official layout: `OUTPUT/<name>/<name>.{pth,safetensors,heads.pth}`.

Why a plain training loop and not the Lightning module of pretraining: a Lightning strategy wraps *one* model in
*one* world-wide process group and writes checkpoints from global rank 0. Multi-student distillation needs a
different model per rank range, DDP over that range's subgroup, teacher collectives over the whole world and one
checkpoint writer per student, which Lightning's strategies do not offer. The loop reuses the pretraining
pieces instead: the recipe config sections, schedules, parameter groups, per-module clipping, checkpoint
readers and the official-layout writers.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodino.data.crops import CropsConfig
from geodino.data.loaders import DataConfig
from geodino.errors import CheckpointError, ConfigError, TrainingError
from geodino.train.recipe import DinoConfig, IbotConfig, KoLeoConfig, OptimConfig, ScheduleConfig, SchedulesConfig

log = logging.getLogger("geodino.distill")

FORMAT = "geodino-distill"
VERSION = 1


# --------------------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TeacherConfig:
    """The frozen teacher: a backbone spec and, optionally, its heads."""

    spec: str = "arch:vit_small?seed=0"  # any load_backbone spec: .pth/.safetensors/export/checkpoint, arch:, HF dir
    heads: str = ""  # a *.heads.pth / teacher_checkpoint.pth; empty: from the spec file if it has heads, else warm-up
    head_warmup_steps: int = 300  # heads-only SSL steps on the frozen teacher when no heads exist
    head_warmup_lr: float = 1e-3  # AdamW peak lr of the warm-up (cosine to 1 %, 10 % linear warm-up)
    head_warmup_teacher_temp: float = 0.07
    head_warmup_momentum: list[float] = field(default_factory=lambda: [0.994, 1.0])  # EMA heads: start -> end


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
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 1000
    keep_last: int = 2
    resume: str = "auto"  # auto (newest checkpoint of output_dir) | never
    export: str = "ema"  # ema (official: the student's EMA is dumped) | student
    progress_bar: bool = True


def _distill_schedules() -> SchedulesConfig:
    """Official ViT-L multi-distillation schedule shapes (v2): lr 0 -> 5e-5 as a cosine ramp (official: over the first
    half of the run, then constant; here over the whole run unless `schedules.lr.cosine_iters` is set), momentum
    0.994 -> 1 (cosine), teacher temperature 0.07, weight decay 0.04."""
    return SchedulesConfig(
        kind="v2",
        lr=ScheduleConfig(start=0.0, peak=0.0, end=5e-5, warmup_iters=0, cosine_iters=None),
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
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(layerwise_decay=0.99, freeze_last_layer_iters=0, clip_grad=3.0)
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
        from geodino.models.archs import ARCHS

        for i, s in enumerate(self.students):
            if s.arch not in ARCHS:
                import difflib

                close = difflib.get_close_matches(s.arch, list(ARCHS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(ARCHS)}"
                raise ConfigError(f"students[{i}].arch={s.arch!r} is not a known architecture{hint}")
        if self.train.max_steps < 1:
            raise ConfigError(f"train.max_steps={self.train.max_steps} must be >= 1")
        if self.train.global_batch_size < 2:
            raise ConfigError(
                f"train.global_batch_size={self.train.global_batch_size} must be >= 2 (KoLeo needs pairs)"
            )
        if self.train.precision not in ("32-true", "bf16-mixed"):
            raise ConfigError(f"train.precision={self.train.precision!r} must be 32-true or bf16-mixed")
        if self.train.export not in ("ema", "student"):
            raise ConfigError(f"train.export={self.train.export!r} must be 'ema' or 'student'")
        if self.train.resume not in ("auto", "never"):
            raise ConfigError(f"train.resume={self.train.resume!r} must be 'auto' or 'never'")
        if self.train.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device={self.train.device!r} must be auto, cpu or cuda")
        if self.teacher.head_warmup_steps < 0:
            raise ConfigError(f"teacher.head_warmup_steps={self.teacher.head_warmup_steps} must be >= 0")
        if self.schedules.kind not in ("v1", "v2"):
            raise ConfigError(f"schedules.kind={self.schedules.kind!r} must be 'v1' or 'v2'")
        for sec in (self.data, self.crops):
            v = getattr(sec, "validate", None)
            if callable(v):
                v()
        if getattr(self.crops, "mask_probability", 1.0) <= 0:
            raise ConfigError("crops.mask_probability must be > 0: the masks pick the patch-distillation positions")
        if getattr(self.crops, "gram", False):
            raise ConfigError("crops.gram=true: distillation has no Gram term; set crops.gram=false")


# --------------------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------------------


def _device(cfg: DistillConfig) -> torch.device:
    want = cfg.train.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _init_distributed(device: torch.device) -> None:
    """Join the process group when launched by torchrun/srun with WORLD_SIZE > 1 (gloo on CPU, NCCL on GPU)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def load_teacher(spec: str, device: torch.device) -> tuple[nn.Module, Any]:
    """The frozen teacher backbone (a DinoVisionTransformer in eval mode) and its FrozenBackbone wrapper."""
    from geodino.backbones import load_backbone

    fb = load_backbone(spec, device=str(device))
    model = getattr(fb, "model", fb)
    if not hasattr(model, "forward_features"):
        raise ConfigError(
            f"teacher.spec={spec!r} is not a DINOv3 ViT (no forward_features); distillation needs a geodino/official "
            "DINOv3 backbone, not a timm baseline"
        )
    model.eval().requires_grad_(False)
    return model, fb


def teacher_heads(
    cfg: DistillConfig, teacher: nn.Module, fb: Any, out_dir: Path, batches_factory: Any, write: bool = True
) -> tuple:
    """(dino_head, ibot_head, source): from `teacher.heads`, from the teacher file, or a fresh warm-up (run by
    every rank together; `write` says whether this rank saves the result)."""
    from geodino.models.heads import DINOHead
    from geodino.train import teacher_heads as th

    embed_dim = int(teacher.embed_dim)
    if cfg.teacher.heads:
        dino, ibot = th.load_heads_file(cfg.teacher.heads, embed_dim)
        return dino, ibot, cfg.teacher.heads
    spec_path = Path(cfg.teacher.spec).expanduser()
    if spec_path.is_file():
        from geodino.train.checkpointing import read_init_source

        try:
            src = read_init_source(spec_path)
        except CheckpointError:
            src = None
        if src is not None and src.has_heads:
            dino, ibot = (th.head_from_state(src.heads[h], str(spec_path), h) for h in th.HEAD_NAMES)
            for name, h in (("dino_head", dino), ("ibot_head", ibot)):
                if h.in_dim != embed_dim:
                    raise CheckpointError(
                        f"{name} in {spec_path} expects {h.in_dim}-d features but the teacher has embed_dim {embed_dim}"
                    )
            return dino, ibot, str(spec_path)
    saved = out_dir / "teacher.heads.pth"
    if saved.is_file():  # a resumed run: the warm-up was done already
        dino, ibot = th.load_heads_file(saved, embed_dim)
        return dino, ibot, str(saved)
    if cfg.teacher.head_warmup_steps == 0:
        raise ConfigError(
            f"teacher {cfg.teacher.spec} has no DINO/iBOT heads and teacher.head_warmup_steps=0; pass "
            "teacher.heads=FILE or allow the heads-only warm-up (teacher.head_warmup_steps > 0)"
        )
    d, i = cfg.dino, cfg.ibot
    torch.manual_seed(cfg.train.seed + 2)
    dino = DINOHead(embed_dim, d.head_n_prototypes, d.head_hidden_dim, d.head_bottleneck_dim, d.head_nlayers)
    ibot = DINOHead(embed_dim, i.head_n_prototypes, i.head_hidden_dim, i.head_bottleneck_dim, i.head_nlayers)
    log.info(
        "teacher %s has no heads: warming up fresh heads for %d steps", cfg.teacher.spec, cfg.teacher.head_warmup_steps
    )
    dino, ibot, hist = th.warmup_heads(
        teacher,
        batches_factory(),
        steps=cfg.teacher.head_warmup_steps,
        dino=dino,
        ibot=ibot,
        lr=cfg.teacher.head_warmup_lr,
        momentum=tuple(cfg.teacher.head_warmup_momentum),  # type: ignore[arg-type]
        teacher_temp=cfg.teacher.head_warmup_teacher_temp,
        device=next(teacher.parameters()).device,
        progress=cfg.train.progress_bar and write,
    )
    meta = {
        "teacher_spec": cfg.teacher.spec,
        "teacher_fingerprint": str(getattr(fb, "fingerprint", "")),
        "warmup_steps": cfg.teacher.head_warmup_steps,
        "warmup_final_loss": hist[-1]["loss"] if hist else float("nan"),
    }
    if write:
        th.save_heads_file(saved, dino, ibot, meta)
    return dino, ibot, f"warm-up ({cfg.teacher.head_warmup_steps} steps) -> {saved}"


def check_files(cfg: DistillConfig) -> None:
    """Fail before any work when a file the config names does not exist (one line naming the key)."""
    if cfg.teacher.heads and not Path(cfg.teacher.heads).expanduser().exists():
        raise CheckpointError(
            f"teacher.heads file {cfg.teacher.heads} not found; pass a *.heads.pth file or leave it empty"
        )
    for i, s in enumerate(cfg.students):
        if s.init_from and not Path(s.init_from).expanduser().exists():
            raise CheckpointError(
                f"students[{i}].init_from file {s.init_from} not found; pass an existing checkpoint, export or "
                "official backbone file, or leave it empty to start from random weights"
            )


def check_student_spec(
    spec: StudentSpec, index: int, teacher_patch: int, k_dino: int | None = None, k_ibot: int | None = None
) -> None:
    """One-line ConfigErrors when a student's patch size or prototype counts differ from the teacher's."""
    where = f"students[{index}] ({spec.name})"
    if spec.patch_size is not None and int(spec.patch_size) != teacher_patch:
        raise ConfigError(
            f"{where}.patch_size={spec.patch_size} differs from the teacher's patch size {teacher_patch}; distillation "
            f"matches patch tokens one to one, so use patch_size={teacher_patch} (or leave it empty)"
        )
    for key, want in (("dino_head_n_prototypes", k_dino), ("ibot_head_n_prototypes", k_ibot)):
        got = getattr(spec, key)
        if want is not None and got is not None and int(got) != want:
            raise ConfigError(
                f"{where}.{key}={got} differs from the teacher head's {want} prototypes; the student learns the "
                f"teacher's prototype assignments, so it needs {want} (or leave it empty)"
            )


def build_student(spec: StudentSpec, index: int, teacher: nn.Module, t_dino: nn.Module, t_ibot: nn.Module) -> nn.Module:
    """A DistillStudent with the teacher's patch size, input bands and prototype counts (checked, one line each)."""
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.distill_arch import DistillStudent

    t_patch, t_chans = int(teacher.patch_size), int(teacher.in_chans)
    check_student_spec(spec, index, t_patch, int(t_dino.out_dim), int(t_ibot.out_dim))
    where = f"students[{index}] ({spec.name})"
    overrides = dict(spec.overrides)
    for k in ("patch_size", "in_chans"):
        overrides.pop(k, None)
    backbone = build_model(
        spec.arch, patch_size=t_patch, in_chans=t_chans, drop_path_rate=spec.drop_path_rate, **overrides
    )
    hidden = spec.head_hidden_dim or t_dino.hidden_dim
    bottleneck = spec.head_bottleneck_dim or t_dino.bottleneck_dim
    dino = DINOHead(backbone.embed_dim, t_dino.out_dim, hidden, bottleneck, t_dino.nlayers)
    hidden_i = spec.head_hidden_dim or t_ibot.hidden_dim
    bottleneck_i = spec.head_bottleneck_dim or t_ibot.bottleneck_dim
    ibot = DINOHead(backbone.embed_dim, t_ibot.out_dim, hidden_i, bottleneck_i, t_ibot.nlayers)
    if spec.init_from:
        from geodino.models.checkpoints import load_strict
        from geodino.train.checkpointing import FIT_HINT, read_init_source

        src = read_init_source(spec.init_from)
        state = src.student if src.kind == "training" and src.student else src.teacher
        load_strict(backbone, state, f"{where} backbone", f"checkpoint {src.path}", FIT_HINT)
    return DistillStudent(backbone, dino, ibot)


def _make_batches(cfg: DistillConfig, patch_size: int, start_step: int, rank: int, world: int, batch: int):
    """An iterator of SSL batches (CONTRIBUTING "SSL batches") for this rank, starting at `start_step`."""
    from geodino.data.loaders import build_ssl_loader

    loader = build_ssl_loader(
        cfg.data,
        cfg.crops,
        batch_size=batch,
        num_workers=cfg.train.num_workers,
        seed=cfg.train.seed,
        patch_size=patch_size,
        start_step=start_step,
        rank=rank,
        world_size=world,
    )
    return iter(loader)


def _student_masks(cfg: DistillConfig, batch: dict[str, Any], n_images: int, patch: int, step: int, rank: int) -> dict:
    """iBOT positions for the student batch: the loader's when it matches, else drawn for (seed, step, rank)."""
    if batch["masks"].shape[0] == 2 * n_images:
        return {k: batch[k] for k in ("masks", "mask_indices", "masks_weight", "n_masked_patches")}
    from geodino.data.collate import mask_rng
    from geodino.data.masking import collate_masks, sample_masks

    h, w = (s // patch for s in batch["global_crops"].shape[-2:])
    masks, upper = sample_masks(
        2 * n_images,
        (h, w),
        mask_rng(cfg.train.seed, step, rank),
        mask_ratio=tuple(cfg.crops.mask_ratio),  # type: ignore[arg-type]
        mask_probability=cfg.crops.mask_probability,
        max_block_fraction=cfg.crops.mask_max_block_fraction,
    )
    out = collate_masks(masks, upper)
    return {k: out[k] for k in ("masks", "mask_indices", "masks_weight", "n_masked_patches")}


def _schedules(cfg: DistillConfig) -> Any:
    from geodino.train.recipe import GramConfig, SSLConfig
    from geodino.train.schedules import Schedules

    ssl = SSLConfig(
        dino=cfg.dino,
        ibot=cfg.ibot,
        koleo=cfg.koleo,
        gram=GramConfig(use_loss=False),
        optim=cfg.optim,
        schedules=cfg.schedules,
    )
    return Schedules.build(ssl, cfg.train.max_steps, cfg.train.global_batch_size)


# --------------------------------------------------------------------------------------------------------------
# checkpoints and export
# --------------------------------------------------------------------------------------------------------------


def _ckpt_dir(out_dir: Path, names: list[str], colocated: bool) -> Path:
    return out_dir / "checkpoints" if colocated else out_dir / names[0] / "checkpoints"


def _save_checkpoint(
    path_dir: Path, arch: nn.Module, opt: torch.optim.Optimizer, step: int, cfg: DistillConfig, keep_last: int
) -> Path:
    from geodino.config import to_dict
    from geodino.io import atomic_path
    from geodino.train.checkpointing import find_checkpoints

    path_dir.mkdir(parents=True, exist_ok=True)
    final = path_dir / f"step_{step:08d}.ckpt"
    state = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "students": {n: m.state_dict() for n, m in arch.students.items()},
        "students_ema": {n: m.state_dict() for n, m in arch.students_ema.items()},
        "backbones": {n: dict(m.backbone.config) for n, m in arch.students.items()},
        "optimizer": opt.state_dict(),
        "config": to_dict(cfg),
    }
    with atomic_path(final) as tmp:
        torch.save(state, tmp)
    if keep_last > 0:
        for old in find_checkpoints(path_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return final


def _load_checkpoint(path: Path, arch: nn.Module, opt: torch.optim.Optimizer) -> int:
    from geodino.models.checkpoints import load_file, load_strict
    from geodino.train.checkpointing import FIT_HINT

    obj = load_file(path)
    if obj.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} was not written by geodino distill; remove it or use another output_dir"
        )
    for name, module in arch.students.items():
        if name not in obj["students"]:
            raise CheckpointError(
                f"checkpoint {path} has no student {name!r} (it has {sorted(obj['students'])}); use the config it was "
                "written with or another output_dir"
            )
        load_strict(module, obj["students"][name], f"student {name}", f"checkpoint {path}", FIT_HINT)
        ema = arch.students_ema[name]
        load_strict(ema, obj["students_ema"][name], f"student {name} EMA", f"checkpoint {path}", FIT_HINT)
    opt.load_state_dict(obj["optimizer"])
    return int(obj["step"])


def export_student(arch: nn.Module, name: str, out_dir: Path, which: str = "ema") -> Path:
    """Write a student's backbone in the official layout (`<name>.pth`, `.safetensors`) and its heads
    (`<name>.heads.pth`) under `out_dir/<name>/`; return the `.pth` path."""
    from geodino.models.checkpoints import save_export

    module = (arch.students_ema if which == "ema" else arch.students)[name]
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.backbone.state_dict().items()}
    heads = {"dino_head": module.dino_head, "ibot_head": module.ibot_head}
    return save_export(folder / name, state, dict(module.backbone.config), heads)[0]


# --------------------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------------------


def distill(cfg: DistillConfig) -> dict[str, Path]:
    """Run a distillation; return `{student name: exported .pth}` for the students this process trained."""
    import torch.distributed as dist

    from geodino.config import save_config
    from geodino.train.distill_arch import DistillLossWeights, DistillMetaArch
    from geodino.train.optim import apply_optim_schedule, build_optimizer, clip_grad_per_module, param_groups
    from geodino.train.subgroups import init_subgroups, plan_subgroups

    cfg.validate()
    check_files(cfg)
    sched = _schedules(cfg)  # schedule errors (lengths) before any work
    device = _device(cfg)
    _init_distributed(device)
    distributed = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    from geodino.io import make_dirs

    out_dir = make_dirs(Path(cfg.output_dir).expanduser(), what="output_dir")

    students_cfg = [
        {"name": s.name, "ranks": list(s.ranks) if s.ranks else None, "share": s.share} for s in cfg.students
    ]
    plan = plan_subgroups(students_cfg, world, cfg.train.global_batch_size)
    layout = init_subgroups(plan, cfg.train.global_batch_size, len(cfg.students))

    torch.manual_seed(cfg.train.seed)
    teacher, fb = load_teacher(cfg.teacher.spec, device)
    patch = int(teacher.patch_size)
    for i, s in enumerate(cfg.students):  # fail on a patch-size mismatch before any warm-up work
        check_student_spec(s, i, patch)
    if rank == 0:  # after the teacher and students are checked: a failed start leaves no run folder
        save_config(cfg, out_dir / "config.yaml")

    def warmup_batches():  # data-parallel warm-up: every rank reads its own shard
        return _make_batches(cfg, patch, 0, rank, world, max(layout.data_batch, 2))

    t_dino, t_ibot, heads_src = teacher_heads(cfg, teacher, fb, out_dir, warmup_batches, write=rank == 0)
    if distributed:
        dist.barrier()
    t_dino, t_ibot = t_dino.to(device), t_ibot.to(device)
    log.info("teacher %s, heads from %s", cfg.teacher.spec, heads_src)

    mine = [i for i in layout.students]
    torch.manual_seed(cfg.train.seed + 1)
    students = {
        cfg.students[i].name: build_student(cfg.students[i], i, teacher, t_dino, t_ibot).to(device) for i in mine
    }
    weights = DistillLossWeights(
        dino=cfg.dino.loss_weight,
        ibot=cfg.ibot.loss_weight,
        koleo=cfg.koleo.loss_weight,
        global_ignore_diagonal=cfg.dino.global_ignore_diagonal,
        student_temp=cfg.dino.student_temp,
        sinkhorn_iterations=cfg.dino.sinkhorn_iterations,
    )
    arch = DistillMetaArch(teacher, t_dino, t_ibot, students, weights, layout).to(device)
    arch.train()

    groups: list[dict[str, Any]] = []
    for name, st in arch.students.items():
        g = param_groups(
            {"backbone": st.backbone, "dino_head": st.dino_head, "ibot_head": st.ibot_head},
            layerwise_decay=cfg.optim.layerwise_decay,
            patch_embed_lr_mult=cfg.optim.patch_embed_lr_mult,
            dino_head_wd_multiplier=cfg.optim.dino_head_wd_multiplier,
        )
        for group in g:
            group["names"] = [f"{name}.{n}" for n in group["names"]]
        groups += g
    opt = build_optimizer(groups, betas=(cfg.optim.adamw_beta1, cfg.optim.adamw_beta2), fused=cfg.optim.fused)

    names = list(arch.students.keys())
    writer = layout.subgroup_rank == 0 if not layout.colocated else rank == 0
    ckpt_dir = _ckpt_dir(out_dir, names, layout.colocated)
    start = 0
    if cfg.train.resume == "auto":
        from geodino.train.checkpointing import find_checkpoints

        found = {int(p.name[5:13]): p for p in find_checkpoints(ckpt_dir)}
        step_found = max(found) if found else 0
        if distributed:  # every subgroup resumes from the same step (the oldest newest checkpoint)
            t = torch.tensor([step_found], device=device if device.type == "cuda" else "cpu")
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            step_found = int(t.item())
        if step_found > 0:
            if step_found not in found:
                raise CheckpointError(
                    f"students disagree on the resume step ({step_found} is missing in {ckpt_dir}); "
                    "remove the newer checkpoints of the other students or start a new output_dir"
                )
            start = _load_checkpoint(found[step_found], arch, opt)
            log.info("resumed from %s at step %d", found[step_found], start)

    callers: dict[str, nn.Module] = dict(arch.students.items())
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        for name, st in arch.students.items():
            if dist.get_world_size(layout.group) > 1:
                callers[name] = DDP(
                    st, process_group=layout.group, device_ids=[device.index] if device.type == "cuda" else None
                )
    arch.callers = callers  # type: ignore[assignment]

    batches = _make_batches(cfg, patch, start, rank, world, layout.data_batch)
    amp = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if cfg.train.precision == "bf16-mixed"
        else nullcontext()
    )
    log_rows: list[dict[str, float]] = []
    log_file = (out_dir / "log.csv") if writer and layout.colocated else (out_dir / names[0] / "log.csv")
    from tqdm.auto import tqdm

    bar = tqdm(
        range(start, cfg.train.max_steps),
        desc="distill",
        initial=start,
        total=cfg.train.max_steps,
        disable=not (cfg.train.progress_bar and writer),
    )
    for step in bar:
        batch = next(batches)
        if "step" in batch and int(batch["step"]) != step:
            raise TrainingError(f"data loader yielded the batch of step {int(batch['step'])} at step {step}")
        torch.manual_seed((cfg.train.seed * 1_000_003 + step * 7919 + rank) % (2**63 - 1))
        v = sched.at(step)
        apply_optim_schedule(opt, v["lr"], v["weight_decay"], v["last_layer_lr"])
        arch.weights.dino_local = float(v.get("dino_local_weight", 1.0))
        b = {
            "global_crops": batch["global_crops"].to(device, non_blocking=True),
            "local_crops": batch["local_crops"].to(device, non_blocking=True),
        }
        b.update(
            {
                k: (t.to(device) if torch.is_tensor(t) else t)
                for k, t in _student_masks(cfg, batch, layout.student_batch, patch, step, rank).items()
            }
        )
        with amp:
            loss, metrics = arch.forward_backward(b, v["teacher_temp"], cfg.train.global_batch_size)
        if not math.isfinite(float(loss)):
            raise TrainingError(
                f"loss is {float(loss)} at step {step} ({', '.join(f'{k}={x:.4g}' for k, x in metrics.items())}); "
                f"lower schedules.lr.end or optim.clip_grad and resume from the last checkpoint in {ckpt_dir}"
            )
        norms = {}
        for name, st in arch.students.items():
            n = clip_grad_per_module(
                {"backbone": st.backbone, "dino_head": st.dino_head, "ibot_head": st.ibot_head}, cfg.optim.clip_grad
            )
            norms.update({f"{name}/grad_norm/{k}": x for k, x in n.items()})
        opt.step()
        opt.zero_grad(set_to_none=True)
        arch.update_ema(v["momentum"])
        row = {
            "step": float(step),
            **metrics,
            **norms,
            "lr": v["lr"],
            "momentum": v["momentum"],
            "teacher_temp": v["teacher_temp"],
        }
        if writer and (step % cfg.train.log_every_n_steps == 0 or step == cfg.train.max_steps - 1):
            log_rows.append(row)
            _append_csv(log_file, row)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
        done = step + 1
        if writer and (done % cfg.train.checkpoint_every_n_steps == 0 or done == cfg.train.max_steps):
            _save_checkpoint(ckpt_dir, arch, opt, done, cfg, cfg.train.keep_last)
    exports: dict[str, Path] = {}
    if writer:
        for name in names:
            exports[name] = export_student(arch, name, out_dir, cfg.train.export)
    if distributed:
        dist.barrier()
    return exports


def _append_csv(path: Path, row: dict[str, float]) -> None:
    """Append one row to the run's log.csv (header on the first row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)
