"""Training checkpoints: reading them, exporting the teacher, and initialising a new stage from an old one.

A geodino training checkpoint is a Lightning checkpoint (so `Trainer.fit(ckpt_path=...)` restores the loops,
the optimizer and the global step) with one extra entry, `geodino`, that says what it holds:

    {"state_dict": {"arch.student.backbone.*", "arch.student.dino_head.*", "arch.student.ibot_head.*",
                    "arch.teacher.backbone.*", "arch.teacher.dino_head.*", "arch.teacher.ibot_head.*",
                    "arch.gram_teacher.*" (when Gram anchoring is on)},
     "optimizer_states": [...], "loops": {...}, "global_step": s,
     "geodino": {"format": "geodino-ssl", "version": 1, "step": s, "config": {...}, "backbone": {build kwargs},
                 "data": {"seed": ..., "next_step": s, "global_batch_size": ..., "samples_seen": ...}}}

The schedules are pure functions of the iteration and the data is a pure function of (seed, sample index),
so the global step is the whole "schedule position" and "data position". Files are written by
`CheckpointCallback` under a temporary name and renamed when complete, so a killed run never leaves a
half-written checkpoint under a final name. The folder's housekeeping by file name (`find_checkpoints`,
`last.ckpt`, `keep_last`, moving checkpoints aside) is `checkpoint_folder.py`, re-exported here.

`export()` writes the teacher backbone as a plain state_dict in the official DINOv3 layout (`.pth` and
`.safetensors`, loadable with `weights_only=True` and `strict=True`) and the heads in a separate file, so that
SSL or distillation can continue from them (the official releases ship no heads).

`read_init_source()` + `apply_init()` implement stage chaining (`init_from=`): the next stage's student,
teacher and Gram teacher start from the previous stage's teacher (as the official high-resolution stage
does with `student.resume_from_teacher_chkpt` and `gram.ckpt`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from geodino.errors import CheckpointError, InputError
from geodino.models.checkpoints.files import HEAD_NAMES, load_file
from geodino.train.checkpoint_folder import (  # re-exported: the folder's housekeeping has its own module
    CKPT_PATTERN,
    CheckpointWriteError,
    abandon_and_say,
    abandon_later_checkpoints,
    checkpoint_step,
    find_checkpoints,
    latest_checkpoint,
    move_aside,
    point_last,
    prune_checkpoints,
    replace_durably,
    write_error,
)
from geodino.train.init_from import (  # re-exported: initialising a stage from another has its own module
    DISTILL_FIT_HINT,
    FIT_HINT,
    FROM_INIT,
    STRUCTURE_KEYS,
    STUDENT_KEYS,
    InitSource,
    apply_init,
    architecture_differences,
    architecture_error,
    check_init,
    init_architecture,
    read_init_source,
)

__all__ = [
    "CKPT_PATTERN",
    "DISTILL_FIT_HINT",
    "FIT_HINT",
    "FORMAT",
    "FROM_INIT",
    "STRUCTURE_KEYS",
    "STUDENT_KEYS",
    "VERSION",
    "CheckpointWriteError",
    "InitSource",
    "abandon_and_say",
    "abandon_later_checkpoints",
    "apply_init",
    "architecture_differences",
    "architecture_error",
    "check_init",
    "check_resume_fits",
    "checkpoint_step",
    "export",
    "find_checkpoints",
    "init_architecture",
    "is_training_checkpoint",
    "latest_checkpoint",
    "load_file",
    "move_aside",
    "point_last",
    "prune_checkpoints",
    "read_init_source",
    "replace_durably",
    "sub_state",
    "write_error",
]

FORMAT = "geodino-ssl"
VERSION = 1
PREFIX = "arch."  # the LightningModule keeps the SSL meta-architecture in `self.arch`


# --------------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------------


def is_training_checkpoint(obj: dict[str, Any]) -> bool:
    """True for a checkpoint written by `geodino pretrain`."""
    return isinstance(obj.get("geodino"), dict) and obj["geodino"].get("format") == FORMAT


def sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `state` under `prefix` (e.g. "arch.teacher.backbone."), with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix)}


def check_resume_fits(ckpt: dict[str, Any], path: Path, backbone_config: dict[str, Any]) -> None:
    """Fail with one line when a resume checkpoint was written for another backbone."""
    saved = (ckpt.get("geodino") or {}).get("backbone")
    if not saved:
        return
    keys = ("arch", "embed_dim", "depth", "patch_size", "in_chans", "n_storage_tokens", "num_heads")
    diff = [
        (k, saved.get(k), backbone_config.get(k))
        for k in keys
        if k in saved and k in backbone_config and saved.get(k) != backbone_config.get(k)
    ]
    if diff:
        k, a, b = diff[0]
        raise CheckpointError(
            f"checkpoint {path} was trained with {k}={a!r} but this config builds {k}={b!r}; resume with the "
            "config it was written with (saved in the run folder as config.yaml) or start a new output_dir"
        )


# what a resumed run may not change: the data stream, the objective and the schedules' length (a resumed run must
# end as the uninterrupted one would); logging, checkpointing, workers and devices' bookkeeping may change
_RESUME_FIXED = ("batch_size", "seed", "data.", "crops.", "ssl.", "trainer.max_steps", "init_from", "init_student_from",
                 "head_warmup_steps")  # fmt: skip
_RESUME_FREE = ("ssl.monitor.",)
# fields free in any list entry: a source's on_error (a run stopped at a corrupt image may resume skipping it: the
# steps before it read the same samples either way), fast_decode (the JPEG decode scale: the same images and crop
# draws, pixels within ~1 DN; runs checkpointed before the key existed resume with it) and index_cache (where the
# raster index is kept: a stored index is reused only while the files and settings it was built from match, so
# it is the index a fresh listing gives; the samples are the same with it, without it or in another file)
RESUME_FREE_FIELDS = ("on_error", "fast_decode", "index_cache")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested config, list entries as `key[i]` (so a message names one field, not a whole list)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    if isinstance(d, list) and any(isinstance(v, dict | list) for v in d):
        out = {f"{prefix[:-1]}.length": len(d)}
        for i, v in enumerate(d):
            out.update(_flat(v, f"{prefix[:-1]}[{i}]."))
        return out
    return {prefix[:-1]: d}


def changed_resume_field(
    saved: dict[str, Any],
    config: dict[str, Any],
    fixed: tuple[str, ...],
    free: tuple[str, ...] = (),
    free_fields: tuple[str, ...] = RESUME_FREE_FIELDS,
) -> tuple[str, Any, Any] | None:
    """The first dotted key under `fixed` (exact keys, or prefixes ending in '.' or '['), not under `free` and not
    ending in one of `free_fields`, whose value differs between a checkpoint's config and this run's: (key, saved
    value, this run's), or None."""
    old, new = _flat(saved), _flat(config)
    for key in sorted(set(old) | set(new)):
        if not any(key == f or (f.endswith((".", "[")) and key.startswith(f)) for f in fixed) or key.startswith(free):
            continue
        if key.rsplit(".", 1)[-1] in free_fields:
            continue
        if old.get(key) != new.get(key):
            return key, old.get(key), new.get(key)
    return None


def resume_config_error(path: Path, key: str, old: Any, new: Any, keeps: str) -> CheckpointError:
    """The one line a resume with a changed `key` fails with."""
    return CheckpointError(
        f"checkpoint {path} was written with {key}={old!r} but this run has {key}={new!r}; a resumed run keeps its "
        f"{keeps}: resume with the run's own config.yaml, or start a new output_dir (init_from the checkpoint to "
        "continue from its weights)"
    )


def check_resume_config(ckpt: dict[str, Any], path: Path, config: dict[str, Any], global_batch_size: int) -> None:
    """Fail with one line when this run's config changes what a resumed run must keep (batch size, seed, data,
    crops, the recipe, max_steps): the result would be neither the old run nor a new one, and its config.yaml would
    misstate what ran."""
    meta = ckpt.get("geodino") or {}
    saved = meta.get("config")
    if not isinstance(saved, dict):
        return
    changed = changed_resume_field(saved, config, _RESUME_FIXED, _RESUME_FREE)
    if changed:
        exc = resume_config_error(path, *changed, keeps="data, batch, seed, recipe and length")
        if changed[0].startswith("data.sources[") and changed[0].endswith("].paths"):
            was = changed[1][0] if isinstance(changed[1], list) and len(changed[1]) == 1 else changed[1]
            exc.args = (
                f"{exc.args[0]}. A moved data folder resumes when its files (names and sizes) are those the run "
                f"folder's data_paths.json records; a run started before geodino wrote it records none: make "
                f"the old path {was!r} a symbolic link to the new folder and resume with the old path",
            )
        raise exc
    gbs = (meta.get("data") or {}).get("global_batch_size")
    if gbs is not None and int(gbs) != int(global_batch_size):
        raise CheckpointError(
            f"checkpoint {path} was written with a global batch of {gbs} but this run has {global_batch_size} "
            "(batch_size x devices x nodes); resume on as many processes, or start a new output_dir"
        )


# --------------------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------------------


def export(ckpt: str | Path, out: str | Path, *, which: str = "teacher", overwrite: bool = False) -> list[Path]:
    """Write a training checkpoint's backbone in the official layout, plus its heads in a separate file.

    `out` names the backbone file: `X.pth` (or `X` / `X.safetensors`) gives `X.pth`, `X.safetensors` (both plain
    official-layout state_dicts; the safetensors metadata holds the build kwargs) and `X.heads.pth`
    (`{"dino_head": ..., "ibot_head": ..., "backbone": build kwargs}`). `which` is "teacher" (the EMA teacher,
    what DINOv3 releases) or "student". Returns the three weight files (.pth, .safetensors, .heads.pth); the STAC
    item written beside them is `stac_item.export_item_path(out)`.

    The output's lock is taken, and existing outputs refused, before the (possibly large) checkpoint is read; a
    missing folder of `out` is created first (`make_dirs`, as every geodino writer does) to hold the lock file.
    """
    if which not in ("teacher", "student"):
        raise InputError(f"export which={which!r} must be 'teacher' or 'student'")
    from geodino.io import check_writable, make_dirs, refuse_folder_in_the_way
    from geodino.models.checkpoints import export_paths, normalization_of_training, save_export
    from geodino.models.checkpoints.stac_item import export_item_path, training_properties
    from geodino.run_lock import locked_output

    ckpt = Path(ckpt).expanduser()
    if not ckpt.exists():
        load_file(ckpt)  # its one line ("not found", naming files nearby) before any output folder is made
    if Path(out).expanduser().is_dir():  # `export CKPT exports/` wrote exports.pth ... beside the folder, not in it
        raise InputError(
            f"export output {out} is a folder; an export is files OUT.pth, OUT.safetensors, OUT.heads.pth and "
            f"OUT.stac.json: name them, e.g. {Path(out) / 'backbone.pth'}"
        )
    outputs = (*export_paths(out), export_item_path(out))  # the STAC item too: a file of the user's is not replaced
    for p in outputs:
        refuse_folder_in_the_way(p)
    make_dirs(outputs[0].parent)
    with locked_output(outputs[0].with_suffix(""), what="export"):  # save_export takes the same lock: nested no-op
        for p in outputs:
            check_writable(p, overwrite=overwrite)
        obj = load_file(ckpt)
        if not is_training_checkpoint(obj):
            raise CheckpointError(
                f"checkpoint {ckpt} was not written by geodino pretrain (no 'geodino' entry); export needs a training "
                "checkpoint such as runs/NAME/checkpoints/last.ckpt"
            )
        state = obj["state_dict"]
        backbone = {k: v.detach().contiguous() for k, v in sub_state(state, f"{PREFIX}{which}.backbone.").items()}
        if not backbone:
            raise CheckpointError(f"checkpoint {ckpt} holds no {which} backbone weights")
        heads = {h: sub_state(state, f"{PREFIX}{which}.{h}.") for h in HEAD_NAMES}
        norm, why = normalization_of_training(obj["geodino"])
        if norm is None:
            warnings.warn(
                f"export {out} records no input normalisation ({why}); whoever loads it must pass the sensor it was "
                "trained with (load_backbone(..., sensor=NAME), or the backbone spec option ?sensor=NAME)",
                stacklevel=2,
            )
        props = training_properties(obj["geodino"], which)  # for the export's STAC item
        config, step = dict(obj["geodino"].get("backbone") or {}), obj["geodino"].get("step")
        return save_export(out, backbone, config, heads, normalization=norm, stac_properties=props, step=step)
