"""`pretrain(cfg)`: one DINOv3 SSL stage (pretrain, Gram anchoring or high-res adaptation) from a config.

A run folder (`output_dir`) holds `config.yaml` (exactly what ran), `checkpoints/step_*.ckpt` + `last.ckpt`,
`logs/metrics.csv`, `tensorboard/` (or the trackers in `trainer.loggers`), `schedules.png` (every schedule over
the run, written at the start) and, at the end, `curves.png` (losses against ln K and the plateau diagnostics)
and `export/teacher.{pth,safetensors,heads.pth}`.
Running the same command again resumes from the newest checkpoint (`checkpoint.resume=auto`), which is also
what a SLURM requeue does.

Stages chain through `init_from`: the Gram stage starts from the pretrain stage's checkpoint and the high-res
stage from the Gram stage's; student, teacher and Gram teacher start from the previous stage's teacher (as the
official high-res stage does). `init_from` may also be an official backbone release: its heads are not public,
so fresh heads are trained first for `head_warmup_steps` iterations with the backbone frozen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

from geodino.errors import CheckpointError, ConfigError, GeoDinoError, InputError, plural
from geodino.io import removes_created_dirs
from geodino.train.config import PRECISIONS, STRATEGIES, CheckpointConfig, PretrainConfig, TrainerConfig
from geodino.train.pretrain_start import accelerator_device, announce_start, join_launched_group, write_start_files
from geodino.train.resume_paths import same_paths_as_saved
from geodino.train.resume_point import agreed_resume_point
from geodino.train.run_start import Start, undo_start

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "CheckpointConfig",
    "PretrainConfig",
    "TrainerConfig",
    "check_data_fits",
    "pretrain",
    "replace",
    "world_size",
]

log = logging.getLogger("geodino.train")


def world_size(cfg: PretrainConfig) -> int:
    """Processes in the run (devices x nodes), used for the global batch and the lr scaling rule."""
    devices = cfg.trainer.devices
    if devices == -1:
        import torch

        devices = max(torch.cuda.device_count(), 1)
    return max(int(devices), 1) * max(int(cfg.trainer.num_nodes), 1)


def _check_koleo_groups(cfg: PretrainConfig) -> None:
    """KoLeo groups must tile the batch (the loss's own rule, checked before anything is written): a group lies
    inside one process's batch, or spans whole batches of several processes and divides the global batch."""
    k = cfg.ssl.koleo
    if not k.distributed or k.group_size is None:
        return
    from geodino.losses.koleo import groups_tile

    local, size = cfg.batch_size, k.group_size
    world = world_size(cfg)
    if groups_tile(local, world, size):
        return
    raise ConfigError(
        f"ssl.koleo.group_size={size} does not tile batches of batch_size={local} on "
        f"{plural(world, 'process', 'processes')} (global "
        f"batch {local * world}); use a batch_size that is a multiple of {size}, a global batch divisible by it, "
        "or set ssl.koleo.group_size to a divisor of batch_size (null: the whole batch)"
    )


def _adopt_init_architecture(cfg: PretrainConfig) -> Any:
    """`ssl.student.arch: from_init`: build the student as the `init_from` file's backbone (arch, patch size, bands
    and every structural build kwarg, plus the DINO/iBOT head sizes of the heads it carries), so that continuing
    from an official release or an export needs no architecture keys. Returns the read source (reused by the
    init, read once), or None for any other arch. The resolved values are what config.yaml records."""
    from geodino.train import checkpointing as ck

    s = cfg.ssl.student
    if s.arch != ck.FROM_INIT:
        return None
    if not cfg.init_from:
        raise ConfigError(
            "ssl.student.arch=from_init needs init_from (the checkpoint or export to take the architecture from)"
        )
    src = ck.read_init_source(cfg.init_from)
    before = {"patch_size": s.patch_size, "in_chans": s.in_chans, **dict(s.overrides or {})}
    s.arch, s.patch_size, s.in_chans, build, heads = ck.init_architecture(src)
    after = {"patch_size": s.patch_size, "in_chans": s.in_chans, **build}
    replaced = [f"{k}={before[k]} (the file's: {after[k]})" for k in ck.STRUCTURE_KEYS if k in before and k in after
                and before[k] != after[k] and k not in ("patch_size", "in_chans")]  # fmt: skip
    # the file decides the structure (what its weights fit); the config's other overrides stay (e.g. a RoPE setting)
    own = {k: v for k, v in dict(s.overrides or {}).items() if k not in ck.STRUCTURE_KEYS}
    if "layerscale_init" in own and (own["layerscale_init"] is None) != (build.get("layerscale_init") is None):
        own.pop("layerscale_init")  # whether LayerScale exists is the file's (its gammas are weights), not its value
    s.overrides = {**build, **own}
    for name, sizes in heads.items():
        section = cfg.ssl.dino if name == "dino_head" else cfg.ssl.ibot
        for key, value in sizes.items():
            setattr(section, key, value)
    if replaced:  # keys the config set that the file's architecture overrides: said, not silently dropped
        print(f"geodino: ssl.student.arch=from_init replaces {', '.join(replaced)}", file=sys.stderr)
    base = s.arch if (src.backbone_config or {}).get("arch") == s.arch else f"a {s.arch} base"
    found = f"{base}, patch {s.patch_size}, {plural(s.in_chans, 'band')}"
    depth, dim = build.get("depth"), build.get("embed_dim")
    print(
        f"geodino: ssl.student.arch=from_init: {found}, depth {depth}, width {dim}"
        + (", DINO/iBOT head sizes of its heads" if heads else "")
        + f" (from {src.path})",
        file=sys.stderr,
    )
    from geodino.train.config import check_crops

    check_crops(cfg.crops, cfg.ssl)  # checked at load against the config's patch size: again, against the file's
    return src


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", os.environ.get("LOCAL_RANK", "0"))) or 0)


def _prepare_output(cfg: PretrainConfig, start: Start) -> tuple[Path, Path | None]:
    """Make and lock the run folder (listed in `start.made` when new); return it and the checkpoint to resume from
    (or None). A used folder's housekeeping (a killed run's half-written checkpoints removed, `hpc_ckpt_*` moved
    aside) waits in `start.later` until the start is accepted."""
    from geodino.io import make_dirs
    from geodino.run_lock import lock_run_folder
    from geodino.train.checkpointing import latest_checkpoint

    fresh = not Path(cfg.output_dir).expanduser().exists()
    out = make_dirs(Path(cfg.output_dir).expanduser(), what="output_dir")  # removed again if the run fails on input
    if _rank() == 0:
        lock_run_folder(out)
        if fresh:  # listed once this run holds it: no other run writes into it
            start.made.append(out)
        start.later += [
            partial(_clear_partial_checkpoints, out / "checkpoints"),
            partial(_set_aside_hpc_checkpoints, out),
        ]
    resume = cfg.checkpoint.resume
    existing = latest_checkpoint(out / "checkpoints")
    if resume == "never":
        if existing is not None:
            raise InputError(
                f"output_dir {out} already holds checkpoints ({existing.name}); resume with checkpoint.resume=auto "
                "or choose another output_dir"
            )
        return out, None
    if resume == "auto":
        return out, existing
    path = Path(resume).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint.resume={resume} not found; pass an existing checkpoint, auto or never")
    return out, path


def _clear_partial_checkpoints(folder: Path) -> None:
    """Remove the checkpoints killed runs were writing (never complete; a sharded one is a folder) with the
    writer-aware `sweep_held_folder`: this run holds the folder, so a checkpoint's temporary is a killed run's unless
    its writer runs here (before, every `.*.tmp-*` went, a live writer's too); other outputs' temporaries go only when
    their writers are gone. A gather's copy of a sharded one may be a live export's or init_from's: `sweep_gathers`
    (on resume) removes only dead writers'."""
    from geodino.io_temps import sweep_held_folder
    from geodino.models.checkpoints.files import GATHER_SUFFIX

    sweep_held_folder(folder, held=lambda target: target.endswith(".ckpt"), skip=lambda n: n.endswith(GATHER_SUFFIX))


def _set_aside_hpc_checkpoints(out: Path) -> None:
    """Move `hpc_ckpt_*.ckpt` files out of the run folder, with one line naming them. Lightning's SLURM handler wrote
    them in earlier geodino versions from inside a signal handler (mid-step, not atomically), and under SLURM
    Lightning itself still resumes from the newest one whenever `fit` gets no checkpoint (a folder without step
    checkpoints), i.e. from a state no step ended in. geodino resumes only from its step checkpoints: the files go
    (renamed, nothing deleted) into `checkpoints/ignored-<timestamp>/`, where Lightning does not look (it lists the
    run folder only, every name that contains `hpc_ckpt_`)."""
    from geodino.train.checkpointing import move_aside

    found = sorted(p for p in out.iterdir() if "hpc_ckpt_" in p.name and p.is_file())
    if not found:
        return
    aside = move_aside(found, out / "checkpoints", "ignored")
    names = ", ".join(p.name for p in found)
    print(
        f"geodino: ignoring {names} in {out} (written mid-step by Lightning's SLURM handler in an earlier geodino "
        f"version, not safe to resume from): moved to {aside}/; this run resumes only from step checkpoints",
        file=sys.stderr,
    )


def _build_arch(cfg: PretrainConfig) -> Any:
    """The SSL meta-architecture; on the meta device (no storage) with `trainer.meta_init`."""
    import torch

    from geodino.train.ssl import SSLMetaArch

    if cfg.trainer.meta_init and cfg.ssl.gram.ckpt:
        raise ConfigError("trainer.meta_init=true cannot load ssl.gram.ckpt yet; pass the Gram teacher as init_from")
    with torch.device("meta") if cfg.trainer.meta_init else contextlib.nullcontext():
        return SSLMetaArch(
            cfg.ssl, total_iters=cfg.trainer.max_steps, global_batch_size=cfg.batch_size * world_size(cfg)
        )


def _loader_factory(cfg: PretrainConfig, **over: Any) -> Any:
    """`factory(start_step=, rank=, world_size=)` -> this rank's SSL DataLoader from `start_step` to the end."""
    from geodino.data.loaders import build_ssl_loader

    kw: dict[str, Any] = dict(
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
        patch_size=cfg.ssl.student.patch_size,
        max_steps=cfg.trainer.max_steps,
        # the recipe's iBOT settings decide the masks (one source of truth for the loss and the loader)
        mask_ratio=list(cfg.ssl.ibot.mask_ratio_min_max),
        mask_probability=cfg.ssl.ibot.mask_sample_probability,
    )
    from geodino.data.config import resolve_photometric
    from geodino.train.launcher import on_cuda

    cuda = on_cuda(cfg.trainer.accelerator)
    kw["pin_memory"] = cuda
    kw.update(over)
    return partial(build_ssl_loader, cfg.data, resolve_photometric(cfg.crops, cuda), **kw)


def check_data_fits(cfg: PretrainConfig, batch: dict[str, Any]) -> None:
    """The data's band count must equal the model's `in_chans` (one clear line otherwise)."""
    c = int(batch["global_crops"].shape[1])
    want = cfg.ssl.student.in_chans
    if c != want:
        raise InputError(
            f"the data has {plural(c, 'band')} per image but ssl.student.in_chans={want}; set ssl.student.in_chans={c} "
            "or select bands in data.* so they match"
        )


def _checkpoint_meta(
    step: int,
    *,
    config: dict[str, Any],
    backbone: dict[str, Any],
    seed: int,
    global_batch_size: int,
    init_from: Any,
    data_extent: dict[str, Any] | None = None,
    normalization: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What every checkpoint records besides the weights: the config, the backbone's build arguments, where the
    data stream stands (so a resumed run continues with the next unseen batch), the training data's extent
    (`train.data_extent`: the geometry of the exports' STAC items) and the input normalisation the loader used
    (what `export` records; without it the export derives one from the data config)."""
    data = {"seed": seed, "next_step": step, "global_batch_size": global_batch_size}
    meta = {
        "config": config,
        "backbone": backbone,
        "data": {**data, "samples_seen": step * global_batch_size},
        "init_from": init_from,
        "data_extent": data_extent,
    }
    return meta | ({"normalization": normalization} if normalization else {})


@removes_created_dirs
def pretrain(cfg: PretrainConfig) -> Path:
    """Run one SSL stage as configured; return the run folder (`output_dir`).

    Resumes from the newest checkpoint in `output_dir` when there is one (`checkpoint.resume=auto`), so a killed
    or requeued run continues where it stopped and ends with the same weights as an uninterrupted one. The run
    folder's lock is released (and its `.geodino.lock` removed) when the run ends or fails, also at start-up. A start
    refused with a geodino error (data, band count, resume checkpoint, init_from, ...) leaves the file system as it
    was: a used folder byte for byte (its housekeeping waits until every check passed, `geodino.train.run_start`),
    a new one removed with the missing folders above it. SLURM's SIGUSR1 outside the steps requeues at once."""
    from geodino.run_lock import release_run_folder
    from geodino.train.stop import requeue_outside_steps

    try:
        with requeue_outside_steps(cfg.trainer.slurm_auto_requeue):  # the steps' StopRequest takes it over
            return _pretrain(cfg)
    finally:
        release_run_folder(Path(cfg.output_dir).expanduser())


def _pretrain(cfg: PretrainConfig) -> Path:
    """`pretrain` while this process holds the run folder (`_prepare_output` takes it)."""
    import torch

    from geodino.train.rank_agreement import refusals_agreed

    head_warmup = _check_schedules(cfg)
    join_launched_group(cfg, world_size(cfg))  # launched as several processes: the checks below are agreed
    start = Start()  # what the start changes in the run folder: undone if it is refused, housekeeping deferred
    try:
        # each rank reads its own init_from, run folder and data (a node-local disk): a refusal on some ranks stops
        # every rank in one line (no block calls a collective; Lightning's group is joined above)
        with refusals_agreed():
            accelerator_device(cfg.trainer.accelerator)  # no GPU for trainer.accelerator=gpu: one line, before a folder
            init_src = _adopt_init_architecture(cfg)  # ssl.student.arch: from_init (before the architecture is read)
            out, resume = _prepare_output(cfg, start)
        max_steps = cfg.trainer.max_steps
        # the step it resumes from by the checkpoints' names, as distillation finds it; several processes: every rank
        # sees the same newest checkpoint (Lightning resumes each from its own copy), else one line on every rank
        finished = agreed_resume_point(cfg.checkpoint.resume, out / "checkpoints", same_step=True)[1] >= max_steps
        with refusals_agreed():
            torch.manual_seed(cfg.seed)
            arch = _build_arch(cfg)
            backbone_config = dict(getattr(arch.student["backbone"], "config", {}) or {})
            factory = _loader_factory(cfg)
            # a finished run's re-run trains on no batch: none is read
            extent, norm = (None, None) if finished else _probe_data(cfg)
            if not finished and _rank() == 0:  # photos given the overhead flips (crops.vflips/rot90 unset): once
                from geodino.data.config import warn_photo_flips

                warn_photo_flips(cfg)

            init_lines: list[str] = []
            post_init = None
            resume_step = None
            if resume is not None:
                resume_step = _check_resume(cfg, out, resume, backbone_config, start)
            elif cfg.init_from:
                init_lines, post_init = _apply_init_from(cfg, arch, init_src, head_warmup)
                init_src = None
            done = isinstance(resume_step, int) and resume_step >= max_steps
            if finished and not done:
                extent, norm = _probe_data(cfg)  # the newest checkpoint's name said finished, the step saved does not

            from geodino.train.module import build_trainer  # Lightning (seconds to import): after the data's checks

            module = _build_module(cfg, arch, factory, out, backbone_config, extent, head_warmup, post_init, norm)
            # a finished run's re-run logs nothing: no logger starts a run (TensorBoard file, W&B or MLflow run)
            trainer, ckpt_cb = build_trainer(cfg.trainer, cfg.checkpoint, out, run_name=cfg.name, loggers=not done)
        with refusals_agreed():  # rank 0 writes (a full disk): the others stop with it
            if trainer.is_global_zero:
                write_start_files(cfg, out, arch, start, resume, resume_step)
    except GeoDinoError:
        undo_start(Path(cfg.output_dir).expanduser(), start)
        raise
    from geodino.train.pretrain_fit import finish_run, fit

    start.settle()  # the used folder's housekeeping, now that the run goes ahead (before Lightning looks at it)
    if trainer.is_global_zero:
        announce_start(cfg, init_lines, head_warmup, resume, resume_step)
    fit(trainer, module, resume)
    finish_run(cfg, out, trainer, ckpt_cb)
    return out


def _check_schedules(cfg: PretrainConfig) -> int:
    """Validate the config and its schedules before the run folder is made; the head warm-up in steps."""
    cfg.validate()
    _check_koleo_groups(cfg)
    from geodino.train.schedules import Schedules, resolve_iters

    # schedule lengths that do not fit the run fail here, naming full keys, before the run folder is made
    Schedules.build(cfg.ssl, cfg.trainer.max_steps, cfg.batch_size, prefix="ssl.")

    return resolve_iters(cfg.head_warmup_steps, cfg.trainer.max_steps, "head_warmup_steps")


def _probe_data(cfg: PretrainConfig) -> tuple[Any, dict[str, Any] | None]:
    """Read one batch in this process so bad data fails in one line before training; the data's extent and the
    normalisation record the loader standardises with (None when it cannot be told). Not read on a re-run of a
    finished run (nothing trains; Lightning then saves no checkpoint to record them in)."""
    from geodino.data.loaders import check_sources_have_pixels
    from geodino.data.normalization import data_normalization

    # one batch in this process first: unreadable data or a band count that does not fit fails here, in one line.
    # Not pinned: this runs on every rank before Lightning sets each rank's GPU, and pinning would make a CUDA
    # context on GPU 0 in every rank for the whole run (distillation's probe pins nothing either)
    probe_loader = _loader_factory(cfg, num_workers=0, max_steps=1, progress=False, pin_memory=False)
    probe = probe_loader(start_step=0, rank=0, world_size=1)
    check_sources_have_pixels(probe.sources, cfg.seed)
    check_data_fits(cfg, next(iter(probe)))
    from geodino.train.data_extent import training_extent
    from geodino.train.init_from import resolve_init_path

    start = cfg.init_from and resolve_init_path(Path(cfg.init_from).expanduser())  # a run folder: its last.ckpt
    # the sensor each source was read as: a source without `sensor:` (3-band uint8 rasters: SAT-493M) is told only
    # by its files, so the export records what training used, not nothing (and ImageNet's at load_backbone)
    norm = data_normalization(cfg.data, sensors=[getattr(s, "sensor", None) for s in probe.sources])[0]
    return training_extent(probe.sources, start), norm  # once, from the scenes the probe loader indexed


def _check_resume(
    cfg: PretrainConfig, out: Path, resume: Path, backbone_config: dict[str, Any], start: Start
) -> int | None:
    """Check the checkpoint to resume from fits this run; the step it was saved at (None when unknown). Moving the
    later checkpoints aside waits in `start.later`."""
    from geodino.models.checkpoints.files import load_meta
    from geodino.train import checkpointing as ck

    try:
        saved = load_meta(resume)  # a sharded folder: its meta.pt only (the weights are Lightning's to load)
    except CheckpointError as exc:
        if cfg.checkpoint.resume != "auto":
            raise
        raise CheckpointError(
            f"the newest checkpoint of {out}, {resume.name}, is corrupt or truncated; delete it to resume from "
            "the one before, or pass checkpoint.resume=PATH"
        ) from exc
    ck.check_resume_fits(saved, resume, backbone_config)
    mine = same_paths_as_saved((saved.get("geodino") or {}).get("config"), cfg, out)  # `data/`, a moved folder
    ck.check_resume_config(saved, resume, mine, cfg.batch_size * world_size(cfg))
    resume_step = saved.get("global_step")
    if not isinstance(resume_step, int):
        resume_step = (saved.get("geodino") or {}).get("step")
    del saved
    if _rank() == 0 and isinstance(resume_step, int):
        from geodino.train.checkpointing import abandon_and_say

        # the later checkpoints belong to the branch this run abandons (see `abandon_later_checkpoints`)
        why = f"resuming from step {resume_step}"
        start.later.append(partial(abandon_and_say, out / "checkpoints", resume_step, resume, why))
    return resume_step


def _apply_init_from(cfg: PretrainConfig, arch: Any, init_src: Any, head_warmup: int) -> tuple[list[str], Any]:
    """Start from `init_from`: its lines for the console, or the deferred loader when `trainer.meta_init` is set
    (whose fit is checked here all the same, so the refusal comes at start)."""
    from geodino.train import checkpointing as ck

    init_lines: list[str] = []
    post_init = None
    src = init_src or ck.read_init_source(cfg.init_from)
    # a Gram teacher named by ssl.gram.ckpt was loaded when the arch was built; else it is init_from's teacher
    kw = {"student_from": cfg.init_student_from, "load_gram": not cfg.ssl.gram.ckpt}
    if cfg.trainer.meta_init:  # applied into the shards once they exist (SSLModule.configure_model)
        # but checked now, on the meta-built arch's shapes, with apply_init's own check: a file that does not fit is
        # refused at start with the line a run without meta_init gives, before the run folder changes
        ck.check_init(arch, src, **kw)
        post_init = partial(ck.apply_init, src=src, **kw)
    else:
        init_lines = ck.apply_init(arch, src, **kw)
    if not src.has_heads and head_warmup == 0:
        log.warning(
            "init_from %s has no heads: fresh DINO/iBOT heads will train together with the pretrained backbone; "
            "set head_warmup_steps (e.g. 1000) to train the heads alone first",
            src.path,
        )
    return init_lines, post_init


def _build_module(
    cfg: PretrainConfig,
    arch: Any,
    factory: Any,
    out: Path,
    backbone_config: dict[str, Any],
    extent: Any,
    head_warmup: int,
    post_init: Any,
    normalization: dict[str, Any] | None = None,
) -> Any:
    """The Lightning module of the run, with the metadata every checkpoint carries."""
    from geodino.config import to_dict
    from geodino.train.module import SSLModule, fsdp_settings

    gbs = cfg.batch_size * world_size(cfg)
    # a partial of a module-level function, not a closure: ddp_spawn pickles the module into each process
    meta = partial(
        _checkpoint_meta,
        config=to_dict(cfg),
        backbone=backbone_config,
        seed=cfg.seed,
        global_batch_size=gbs,
        init_from=cfg.init_from,
        data_extent=extent,
        normalization=normalization,
    )
    return SSLModule(
        arch,
        arch.schedules.at,
        loader_factory=factory,
        seed=cfg.seed,
        clip_grad=cfg.ssl.optim.clip_grad,
        betas=(cfg.ssl.optim.adamw_beta1, cfg.ssl.optim.adamw_beta2),
        head_warmup_steps=head_warmup,
        fsdp=fsdp_settings(cfg.trainer),
        checkpoint_meta=meta,
        checkpoint_dir=out / "checkpoints",
        compile_blocks=cfg.trainer.compile,
        activation_checkpointing=cfg.trainer.activation_checkpointing,
        fused=cfg.ssl.optim.fused,
        post_init=post_init,
    )


def replace(cfg: PretrainConfig, **changes: Any) -> PretrainConfig:
    """A copy of `cfg` with top-level fields changed (handy in notebooks and tests)."""
    return dataclasses.replace(cfg, **changes)
