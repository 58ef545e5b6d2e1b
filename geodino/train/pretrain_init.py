"""A pretraining run started from `init_from`: the student's architecture adopted from the file
(`ssl.student.arch: from_init`) and the file's weights applied to the meta-architecture (or deferred with
`trainer.meta_init`)."""

from __future__ import annotations

import logging
import sys
from functools import partial
from typing import Any

from geodino.errors import ConfigError, plural
from geodino.train.config import PretrainConfig

log = logging.getLogger("geodino.train")


def adopt_init_architecture(cfg: PretrainConfig) -> Any:
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


def apply_init_from(cfg: PretrainConfig, arch: Any, init_src: Any, head_warmup: int) -> tuple[list[str], Any]:
    """Start from `init_from`: its lines for the console, or the deferred loader when `trainer.meta_init` is set
    (whose fit is checked here all the same, so the refusal comes at start)."""
    from geodino.train import checkpointing as ck

    init_lines: list[str] = []
    post_init = None
    if init_src is None:
        assert cfg.init_from is not None  # called for a run with init_from (pretrain.py)
        init_src = ck.read_init_source(cfg.init_from)
    src = init_src
    # a Gram teacher named by ssl.gram.ckpt was loaded when the arch was built; else it is init_from's teacher
    kw: dict[str, Any] = {"student_from": cfg.init_student_from, "load_gram": not cfg.ssl.gram.ckpt}
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
