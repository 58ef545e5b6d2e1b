"""Building a distillation run: device and process group, the frozen teacher and its heads, the students, the
data, the schedules and the optimizer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import torch
from torch import nn

from geodino.errors import CheckpointError, ConfigError
from geodino.train.distill.config import DistillConfig
from geodino.train.distill.processes import init_distributed, pick_device
from geodino.train.distill.students import build_student, check_student_spec, check_students
from geodino.train.launcher import local_gpu, srun_world

if TYPE_CHECKING:
    from geodino.models.frozen import FastPath
    from geodino.models.heads import DINOHead
    from geodino.models.vit import DinoVisionTransformer
    from geodino.train.distill_arch import DistillMetaArch, DistillStudent

log = logging.getLogger("geodino.distill")

__all__ = [
    "FoundHeads",
    "build_optimizer",
    "build_schedules",
    "build_student",
    "check_files",
    "check_student_spec",
    "check_students",
    "find_heads",
    "head_prototypes",
    "init_distributed",
    "load_teacher",
    "local_gpu",
    "make_batches",
    "make_loader",
    "pick_device",
    "srun_world",
    "student_masks",
    "teacher_heads",
]


def load_teacher(spec: str, device: torch.device) -> tuple[DinoVisionTransformer, Any]:
    """The frozen teacher backbone (a DinoVisionTransformer in eval mode) and its FrozenBackbone wrapper."""
    from geodino.backbones import load_backbone

    fb = load_backbone(spec, device=str(device))
    model = getattr(fb, "model", fb)
    # a timm ViT has forward_features too (it then failed on `patch_size` with a traceback): the kind decides
    if getattr(fb, "kind", "geodino") != "geodino" or not hasattr(model, "forward_features"):
        kind = getattr(fb, "kind", type(model).__name__)
        raise ConfigError(
            f"teacher.spec={spec!r} is a {kind} model, not a DINOv3 ViT; distillation needs a geodino/official "
            "DINOv3 backbone (an official .pth, a geodino export or checkpoint, a .safetensors file, an HF folder or "
            "arch:NAME)"
        )
    model.eval().requires_grad_(False)
    return cast("DinoVisionTransformer", model), fb  # a geodino backbone's model (checked above)


def teacher_path(cfg: DistillConfig, device: torch.device, step_batch: int, warmup_batch: int = 0) -> FastPath:
    """The frozen teacher's inference path for this run (`teacher.fast`, `geodino.inference.job_path`): bf16
    weights under bf16-mixed precision, and compiled only when the teacher's forwards, counted in images of the
    global crop size, repay the warm-up: the distillation steps' global crops (`step_batch` images per step on
    this process) and, when `warmup_batch` > 0, the heads warm-up's clean and masked global views and its local
    crops (`warmup_batch` images per warm-up step)."""
    from geodino.inference import job_path

    c = cfg.crops
    g = int(c.global_size)
    images: float = cfg.train.max_steps * step_batch * c.n_global
    if warmup_batch > 0:
        local = warmup_batch * c.n_local * (c.local_size / g) ** 2
        images += cfg.teacher.head_warmup_steps * (2 * warmup_batch * c.n_global + local)
    amp = cfg.train.precision == "bf16-mixed"
    return job_path(device, cfg.teacher.fast, None, amp, n_images=int(images), image_size=(g, g))


def fast_teacher(
    cfg: DistillConfig, teacher: DinoVisionTransformer, device: torch.device, per_rank_batch: int
) -> tuple[nn.Module, FastPath]:
    """(`teacher` on its fast inference path, the path): a `FastViT` holding prepared weights (the caller drops the
    eager model, which the run never needs again: checkpoints hold the students only), or `teacher` itself when the
    path is off. The compile is decided for the distillation steps alone; `teacher_heads` widens it when a warm-up
    runs (the FastViT's `path` then says so)."""
    from geodino.models.frozen import FastViT

    path = teacher_path(cfg, device, per_rank_batch)
    if not path.enabled:
        return teacher, path
    return FastViT(teacher, path).to(device), path


def _count_warmup(cfg: DistillConfig, teacher: DinoVisionTransformer, step_batch: int, warmup_batch: int) -> None:
    """Decide the teacher's compile with the heads warm-up's forwards counted in the job: when this run warms heads
    up, and when it resumes a run that did (so that the resumed run computes as the first one did)."""
    from geodino.models.frozen import FastViT

    if isinstance(teacher, FastViT) and warmup_batch:
        teacher.path = teacher_path(cfg, next(teacher.parameters()).device, step_batch, warmup_batch)


def _check_heads_teacher(saved: Path, fingerprint: str, spec: str) -> dict[str, Any]:
    """A run folder's warmed-up heads serve only the teacher they were warmed up on (its weights' fingerprint).
    Returns the file's metadata."""
    from geodino.models.checkpoints import read_heads

    meta = read_heads(saved)[1]
    was = str(meta.get("teacher_fingerprint") or "")
    if was and fingerprint and was != fingerprint:
        raise CheckpointError(
            f"{saved} holds heads warmed up on another teacher ({meta.get('teacher_spec')!r}), not on {spec!r}; "
            "delete it to warm up fresh heads for this teacher, or choose another output_dir"
        )
    return meta


class FoundHeads(NamedTuple):
    """The teacher's DINO/iBOT heads where they exist, with where they came from (`saved`: this run folder's
    `teacher.heads.pth` from an earlier attempt); `dino` None: a heads-only warm-up must make them."""

    dino: DINOHead | None = None
    ibot: DINOHead | None = None
    source: str = ""
    saved: bool = False


def find_heads(
    cfg: DistillConfig, teacher: DinoVisionTransformer, fb: Any, out_dir: Path, resuming: bool = False
) -> FoundHeads:
    """The teacher's heads from `teacher.heads`, the teacher file or `out_dir/teacher.heads.pth`, else the word that
    a warm-up must make them. Called before the run writes anything, so that a teacher without heads and
    `teacher.head_warmup_steps=0` is refused (ConfigError) before config.yaml exists. `out_dir/teacher.heads.pth`
    made with other head sizes, warm-up settings, seed or data than `cfg` asks is warmed up again (`heads_record`),
    unless the run resumes (`resuming`: its students learnt from those heads; the resume checks the recipe)."""
    from geodino.train import teacher_heads as th
    from geodino.train.distill.heads_record import check_given_heads, spec_file, stale_heads, warn_heads_teacher

    embed_dim = int(teacher.embed_dim)
    if cfg.teacher.heads:
        dino, ibot = th.load_heads_file(cfg.teacher.heads, embed_dim)
        check_given_heads(cfg.teacher.heads, dino, ibot, cfg)
        warn_heads_teacher(cfg.teacher.heads, str(getattr(fb, "fingerprint", "") or ""), cfg.teacher.spec)
        return FoundHeads(dino, ibot, cfg.teacher.heads)
    spec_path, which = spec_file(cfg.teacher.spec)
    if spec_path is not None:
        from geodino.train.checkpointing import read_init_source

        # ?which=NAME (NAME.raw) of a geodino distill checkpoint: that student, whose heads come with it; on any
        # other file it is a key prefix (read_init_source refuses it there), with no heads known to go with it
        picks_student = which not in ("", "teacher", "student")
        try:
            src = read_init_source(f"{spec_path}?which={which}" if picks_student else spec_path)
        except CheckpointError:
            src = None
        # the heads of the backbone the spec loads: a training checkpoint's student heads for ?which=student
        heads = {} if src is None else src.student_heads if which == "student" else src.heads
        if src is not None and all(h in heads for h in th.HEAD_NAMES):
            dino, ibot = (th.head_from_state(heads[h], str(spec_path), h) for h in th.HEAD_NAMES)
            for name, h in (("dino_head", dino), ("ibot_head", ibot)):
                if h.in_dim != embed_dim:
                    raise CheckpointError(
                        f"{name} in {spec_path} expects {h.in_dim}-d features but the teacher has embed_dim {embed_dim}"
                    )
            return FoundHeads(dino, ibot, str(spec_path))
    saved = out_dir / "teacher.heads.pth"
    # a resumed run, or a re-run of one killed before its first checkpoint: the warm-up was done already (for this
    # teacher, checked; with these settings, checked unless the run resumes)
    if saved.is_file():
        meta = _check_heads_teacher(saved, str(getattr(fb, "fingerprint", "")), cfg.teacher.spec)
        if resuming or cfg.teacher.head_warmup_steps == 0 or not stale_heads(saved, meta, cfg):
            dino, ibot = th.load_heads_file(saved, embed_dim)
            return FoundHeads(dino, ibot, str(saved), saved=True)
        return FoundHeads()
    if cfg.teacher.head_warmup_steps == 0:
        raise ConfigError(
            f"teacher {cfg.teacher.spec} has no DINO/iBOT heads and teacher.head_warmup_steps=0; pass "
            "teacher.heads=FILE or allow the heads-only warm-up (teacher.head_warmup_steps > 0)"
        )
    return FoundHeads()


def head_prototypes(cfg: DistillConfig, found: FoundHeads) -> tuple[int, int]:
    """(DINO, iBOT) prototype counts of the teacher's heads: those found, or the warm-up's (`dino`/`ibot.head_*`),
    known before the warm-up runs."""
    if found.dino is not None and found.ibot is not None:
        return int(found.dino.out_dim), int(found.ibot.out_dim)
    return int(cfg.dino.head_n_prototypes), int(cfg.ibot.head_n_prototypes)


def teacher_heads(
    cfg: DistillConfig,
    teacher: DinoVisionTransformer,
    fb: Any,
    out_dir: Path,
    batches_factory: Any,
    write: bool = True,
    warmup_batch: int = 0,
    step_batch: int = 0,
    found: FoundHeads | None = None,
) -> tuple:
    """(dino_head, ibot_head, source): from `teacher.heads`, from the teacher file, or a fresh warm-up (run by
    every rank together on `warmup_batch` images each; `write` says whether this rank saves the result).
    `step_batch`: this process's images per distillation step (with `warmup_batch`, the teacher's compile rule).
    `found`: `find_heads`'s answer when the caller asked it already (None: asked here)."""
    from geodino.train import teacher_heads as th
    from geodino.train.distill.heads_record import save_warmed_heads, warmup_record
    from geodino.train.rank_agreement import refusals_agreed
    from geodino.train.recipe import projection_head

    if found is None:
        found = find_heads(cfg, teacher, fb, out_dir)
    if found.dino is not None:
        if found.saved:  # the path the run had: a resume stays bit-identical
            _count_warmup(cfg, teacher, step_batch, warmup_batch)
        return found.dino, found.ibot, found.source
    embed_dim = int(teacher.embed_dim)
    saved = out_dir / "teacher.heads.pth"
    d, i = cfg.dino, cfg.ibot
    torch.manual_seed(cfg.train.seed + 2)
    dino, ibot = projection_head(embed_dim, d), projection_head(embed_dim, i)
    log.info(
        "teacher %s has no heads: warming up fresh heads for %d steps", cfg.teacher.spec, cfg.teacher.head_warmup_steps
    )
    _count_warmup(cfg, teacher, step_batch, warmup_batch)
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
    steps, mom = cfg.teacher.head_warmup_steps, tuple(cfg.teacher.head_warmup_momentum)
    share = th.init_share(mom, steps)  # type: ignore[arg-type]
    meta = {
        "teacher_spec": cfg.teacher.spec,
        "teacher_fingerprint": str(getattr(fb, "fingerprint", "")),
        "warmup_steps": steps,
        "warmup_final_loss": hist[-1]["loss"] if hist else float("nan"),
        "warmup_init_share": share,
        **warmup_record(cfg),
    }
    with refusals_agreed():  # rank 0 writes (a full disk): the others stop with it, not in the next collective
        if write:
            save_warmed_heads(saved, dino, ibot, meta)
    m0 = th.warmup_momentum_start(mom[0], steps)
    return (
        dino,
        ibot,
        (
            f"warm-up ({steps} steps, EMA momentum {m0:.4g} -> {mom[1]:.4g}: {share:.2%} of the random init left) "
            f"-> {saved}"
        ),
    )


def check_files(cfg: DistillConfig) -> None:
    """Fail before any work when a file the config names does not exist (one line naming the key)."""
    if cfg.teacher.heads and not Path(cfg.teacher.heads).expanduser().exists():
        raise CheckpointError(
            f"teacher.heads file {cfg.teacher.heads} not found; pass a *.heads.pth file or leave it empty"
        )
    from geodino.train.init_from import split_which

    for i, s in enumerate(cfg.students):
        if s.init_from and not split_which(s.init_from)[0].exists():  # FILE?which=NAME: the file before the `?`
            raise CheckpointError(
                f"students[{i}].init_from file {s.init_from} not found; pass an existing checkpoint, export or "
                "official backbone file, or leave it empty to start from random weights"
            )


def check_koleo_groups(cfg: DistillConfig, plan: Any, world: int) -> None:
    """With `koleo.distributed`, KoLeo groups of `koleo.group_size` must tile every student's batches (each
    student's images per process on its subgroup's processes; the loss's own rule), checked before anything is
    written and the same on every rank (so no rank waits on another that stopped)."""
    from geodino.errors import plural
    from geodino.losses.koleo import groups_tile

    k, total = cfg.koleo, int(cfg.train.global_batch_size)
    if not k.distributed or k.group_size is None:
        return
    for p in [None] if plan is None else plan:
        n = world if p is None else p.size  # the processes a student's batch is spread over
        if not groups_tile(total // n, n, k.group_size):
            who = "" if p is None else f" of student {p.name!r}"
            raise ConfigError(
                f"koleo.group_size={k.group_size} does not tile the batches{who}: {total // n} images per process on "
                f"{plural(n, 'process', 'processes')} (train.global_batch_size={total}); set "
                "koleo.group_size to a divisor of the per-process batch or a multiple of it dividing the global "
                "batch (null: the whole batch)"
            )


def make_batches(cfg: DistillConfig, patch_size: int, start_step: int, rank: int, world: int, batch: int):
    """An iterator of SSL batches (CONTRIBUTING "SSL batches") for this rank, starting at `start_step`."""
    return iter(make_loader(cfg, patch_size, start_step, rank, world, batch))


def make_loader(cfg: DistillConfig, patch_size: int, start_step: int, rank: int, world: int, batch: int):
    """The SSL loader behind `make_batches` (its `sources` give the run's data extent)."""
    from geodino.data.config import resolve_photometric
    from geodino.data.loaders import build_ssl_loader

    on_cuda = pick_device(cfg).type == "cuda"
    return build_ssl_loader(
        cfg.data,
        resolve_photometric(cfg.crops, on_cuda),
        batch_size=batch,
        num_workers=cfg.train.num_workers,
        seed=cfg.train.seed,
        patch_size=patch_size,
        start_step=start_step,
        rank=rank,
        world_size=world,
        pin_memory=on_cuda,  # asynchronous host-to-GPU copies of the crops (build_ssl_loader)
    )


def student_masks(cfg: DistillConfig, batch: dict[str, Any], n_images: int, patch: int, step: int, rank: int) -> dict:
    """iBOT positions for the student batch (`n_images` images of `n_global_crops` global crops each, the loader's
    count, else `crops.n_global`): the loader's when it matches, else drawn for (seed, step, rank)."""
    n_global = int(batch.get("n_global_crops", cfg.crops.n_global))
    if batch["masks"].shape[0] == n_global * n_images:
        return {k: batch[k] for k in ("masks", "mask_indices", "masks_weight", "n_masked_patches")}
    from geodino.data.collate import mask_rng
    from geodino.data.masking import collate_masks, sample_masks

    h, w = (s // patch for s in batch["global_crops"].shape[-2:])
    masks, upper = sample_masks(
        n_global * n_images,
        (h, w),
        mask_rng(cfg.train.seed, step, rank),
        mask_ratio=tuple(cfg.crops.mask_ratio),  # type: ignore[arg-type]
        mask_probability=cfg.crops.mask_probability,
        max_block_fraction=cfg.crops.mask_max_block_fraction,
    )
    out = collate_masks(masks, upper)
    return {k: out[k] for k in ("masks", "mask_indices", "masks_weight", "n_masked_patches")}


def build_schedules(cfg: DistillConfig) -> Any:
    from geodino.train.distill.config import recipe_view
    from geodino.train.schedules import Schedules

    return Schedules.build(
        recipe_view(cfg), cfg.train.max_steps, cfg.train.global_batch_size, length_key="train.max_steps"
    )


def build_optimizer(cfg: DistillConfig, arch: DistillMetaArch) -> torch.optim.Optimizer:
    """One AdamW over every student's backbone and heads (official parameter groups, names prefixed by student)."""
    from geodino.train.optim import build_optimizer as adamw
    from geodino.train.optim import param_groups

    groups: list[dict[str, Any]] = []
    for name, student in arch.students.items():
        st = cast("DistillStudent", student)  # what the ModuleDict holds (it yields them typed as nn.Module)
        g = param_groups(
            {"backbone": st.backbone, "dino_head": st.dino_head, "ibot_head": st.ibot_head},
            layerwise_decay=cfg.optim.layerwise_decay,
            patch_embed_lr_mult=cfg.optim.patch_embed_lr_mult,
            dino_head_wd_multiplier=cfg.optim.dino_head_wd_multiplier,
        )
        for group in g:
            group["names"] = [f"{name}.{n}" for n in group["names"]]
        groups += g
    return adamw(groups, betas=(cfg.optim.adamw_beta1, cfg.optim.adamw_beta2), fused=cfg.optim.fused)
