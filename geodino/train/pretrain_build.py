"""What a pretraining run is built from: its process count (`world_size`), the SSL meta-architecture, the data
loader factory and the one-batch probe that checks the data before training, and the Lightning module with the
metadata every checkpoint records."""

from __future__ import annotations

import contextlib
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError, InputError, plural
from geodino.train.config import PretrainConfig


def world_size(cfg: PretrainConfig) -> int:
    """Processes in the run (devices x nodes), used for the global batch and the lr scaling rule."""
    devices = cfg.trainer.devices
    if devices == -1:
        import torch

        devices = max(torch.cuda.device_count(), 1)
    return max(int(devices), 1) * max(int(cfg.trainer.num_nodes), 1)


def build_arch(cfg: PretrainConfig) -> Any:
    """The SSL meta-architecture; on the meta device (no storage) with `trainer.meta_init`."""
    import torch

    from geodino.train.ssl import SSLMetaArch

    if cfg.trainer.meta_init and cfg.ssl.gram.ckpt:
        raise ConfigError("trainer.meta_init=true cannot load ssl.gram.ckpt yet; pass the Gram teacher as init_from")
    with torch.device("meta") if cfg.trainer.meta_init else contextlib.nullcontext():
        return SSLMetaArch(
            cfg.ssl, total_iters=cfg.trainer.max_steps, global_batch_size=cfg.batch_size * world_size(cfg)
        )


def loader_factory(cfg: PretrainConfig, **over: Any) -> Any:
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


def checkpoint_meta(
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


def probe_data(cfg: PretrainConfig) -> tuple[Any, dict[str, Any] | None]:
    """Read one batch in this process so bad data fails in one line before training; the data's extent and the
    normalisation record the loader standardises with (None when it cannot be told). Not read on a re-run of a
    finished run (nothing trains; Lightning then saves no checkpoint to record them in)."""
    from geodino.data.loaders import check_sources_have_pixels
    from geodino.data.normalization import data_normalization

    # one batch in this process first: unreadable data or a band count that does not fit fails here, in one line.
    # Not pinned: this runs on every rank before Lightning sets each rank's GPU, and pinning would make a CUDA
    # context on GPU 0 in every rank for the whole run (distillation's probe pins nothing either)
    # the index it builds is the run's (kept in memory for the training loader: `data.archive_index`), so its
    # progress shows, on the first process only (this loader is rank 0's on every process)
    first = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0
    probe_loader = loader_factory(cfg, num_workers=0, max_steps=1, progress=first, pin_memory=False)
    probe = probe_loader(start_step=0, rank=0, world_size=1)
    check_sources_have_pixels(probe.sources, cfg.seed)
    if first:  # scenes read by their `data stack` VRT's rule (Sentinel-2 baselines >= 04.00): one line a source
        from geodino.data.archive_sensor import stack_rule_line

        for line in filter(None, map(stack_rule_line, probe.sources)):
            print(f"geodino: data {line}", file=sys.stderr)
    check_data_fits(cfg, next(iter(probe)))
    from geodino.train.data_extent import training_extent
    from geodino.train.init_from import resolve_init_path

    start = cfg.init_from and resolve_init_path(Path(cfg.init_from).expanduser())  # a run folder: its last.ckpt
    # the sensor each source was read as: a source without `sensor:` (3-band uint8 rasters: SAT-493M) is told only
    # by its files, so the export records what training used, not nothing (and ImageNet's at load_backbone)
    norm = data_normalization(cfg.data, sensors=[getattr(s, "sensor", None) for s in probe.sources])[0]
    return training_extent(probe.sources, start), norm  # once, from the scenes the probe loader indexed


def build_module(
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
        checkpoint_meta,
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
