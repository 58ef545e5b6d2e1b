"""The distillation checkpoint format (students, EMAs and optimizer; resumable) and the export of each student's
EMA in the official layout (`OUTPUT/<name>/<name>.{pth,safetensors,heads.pth}`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from geodino.errors import CheckpointError
from geodino.train.distill.config import DistillConfig

if TYPE_CHECKING:
    from geodino.train.distill_arch import DistillMetaArch, DistillStudent

__all__ = [
    "FORMAT",
    "VERSION",
    "check_resume_config",
    "checkpoint_dir",
    "data_record",
    "export_properties",
    "export_student",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "geodino-distill"
VERSION = 1

# what a resumed distillation keeps (as pretraining: teacher, students, data stream, objective, schedules and their
# length); devices, processes per student, workers, precision, logging and checkpoint cadence may change
RESUME_FIXED = ("teacher.", "students.", "students[", "dino.", "ibot.", "koleo.", "optim.", "schedules.", "data.",
                "crops.", "train.max_steps", "train.global_batch_size", "train.seed")  # fmt: skip
# student processes; a source's error policy, JPEG decode scale and index_cache (where the raster index is kept: a
# stored index is reused only while the files and settings it was built from match, so the samples are the same)
RESUME_FREE_FIELDS = ("ranks", "share", "on_error", "fast_decode", "index_cache")
# how the frozen teacher computes (its outputs move within the path's measured tolerance): a run whose compile
# fails on a new machine resumes with teacher.fast=off; pretraining's iBOT mask keys, which distillation never read
# (crops.mask_* place its iBOT positions): a run that had set them resumes once they are taken out
RESUME_FREE = ("teacher.fast", "ibot.mask_sample_probability", "ibot.mask_ratio_min_max")


def check_resume_config(path: Path, config: dict[str, Any], out: Path | None = None) -> None:
    """Fail with one line when this run's config changes what a resumed distillation must keep (read from the
    newest checkpoint `path` before anything of the run folder, config.yaml included, is rewritten). `out`: the run
    folder, whose `data_paths.json` (written at every start) lets a moved data folder with the same files resume."""
    from geodino.models.checkpoints import load_file
    from geodino.train.checkpointing import changed_resume_field, resume_config_error

    obj = load_file(path)
    saved = obj.get("config") if obj.get("format") == FORMAT else None
    if not isinstance(saved, dict):
        return  # not ours: load_checkpoint names it
    from geodino.train.resume_paths import same_paths_as_saved  # `data/` and `data` name the same files

    config = same_paths_as_saved(saved, config, out)
    changed = changed_resume_field(saved, config, RESUME_FIXED, RESUME_FREE, free_fields=RESUME_FREE_FIELDS)
    if changed:
        exc = resume_config_error(path, *changed, keeps="teacher, students, data, batch, seed, recipe and length")
        exc.args = (_distill_init_hint(exc.args[0], path, saved),)
        key, was = changed[0], changed[1]
        if key.startswith("data.sources[") and key.endswith("].paths"):  # as pretraining says it
            was = was[0] if isinstance(was, list) and len(was) == 1 else was
            exc.args = (
                f"{exc.args[0]}. A moved data folder resumes when its files (names and sizes) are those the run "
                "folder's data_paths.json records; a run started before geodino wrote it records none: make the "
                f"old path {was!r} a symbolic link to the new folder and resume with the old path",
            )
        raise exc


def _distill_init_hint(message: str, path: Path, saved: dict[str, Any]) -> str:
    """Pretraining's resume refusal says "init_from the checkpoint", a key distillation does not have (an
    `init_from=...` override is an unknown key): name the distillation key, `students[i].init_from`, with this
    checkpoint and a student of it."""
    names = [s.get("name") for s in saved.get("students") or [] if isinstance(s, dict) and s.get("name")]
    name = names[0] if names else "NAME"
    return message.replace(
        "(init_from the checkpoint to continue from its weights)",
        f"whose students start from this checkpoint's weights, e.g. students[0].init_from='{path}?which={name}' "
        f"(the student's EMA; ?which={name}.raw: its raw weights)",
    )


def data_record(cfg: DistillConfig, sources: list[Any]) -> dict[str, Any] | None:
    """The input normalisation the students are distilled with: the data config's, where a source naming no sensor
    takes the one its loader resolved from the files (3-band uint8 rasters: SAT-493M), as pretraining records it;
    None when it cannot be told (the export then says why)."""
    from geodino.data.normalization import data_normalization

    return data_normalization(cfg.data, "distillation", sensors=[getattr(s, "sensor", None) for s in sources])[0]


def checkpoint_dir(out_dir: Path, names: list[str], colocated: bool) -> Path:
    return out_dir / "checkpoints" if colocated else out_dir / names[0] / "checkpoints"


def save_checkpoint(
    path_dir: Path,
    arch: DistillMetaArch,
    opt: torch.optim.Optimizer,
    step: int,
    cfg: DistillConfig,
    keep_last: int,
    norm: dict[str, Any] | None = None,
) -> Path:
    from geodino.config import to_dict
    from geodino.io import atomic_path
    from geodino.models.checkpoints.reproducible import save_torch
    from geodino.train.checkpointing import prune_checkpoints

    path_dir.mkdir(parents=True, exist_ok=True)
    final = path_dir / f"step_{step:08d}.ckpt"
    state = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "students": {n: m.state_dict() for n, m in arch.students.items()},
        "students_ema": {n: m.state_dict() for n, m in arch.students_ema.items()},
        "backbones": {n: dict(m.backbone.config) for n, m in arch.students.items()},  # type: ignore[union-attr, arg-type]
        "optimizer": opt.state_dict(),
        "config": to_dict(cfg),
    } | ({"normalization": norm} if norm else {})  # what the students' input was standardised with (data_record)
    try:
        with atomic_path(final) as tmp:  # the temporary is removed on any failure
            save_torch(state, tmp)
    except OSError as exc:  # a full disk or a lost mount: one line, not a traceback
        from geodino.train.checkpointing import write_error

        raise write_error(final, exc, step) from exc
    # among the running branch's checkpoints (steps up to this one): the one just written is always kept
    prune_checkpoints(path_dir, step, keep_last, lambda p: p.unlink(missing_ok=True))
    # a resume that moved a later branch aside made `last.ckpt` (pointing at its start); kept current from then on,
    # it pointed at the resume step (or, once pruned, at nothing) while newer checkpoints were written
    link = path_dir / "last.ckpt"
    if link.is_symlink():
        from geodino.train.checkpoint_folder import point_last

        point_last(link, final.name)
    return final


def load_checkpoint(path: Path, arch: DistillMetaArch, opt: torch.optim.Optimizer) -> int:
    from geodino.models.checkpoints import load_file, load_strict
    from geodino.train.checkpointing import DISTILL_FIT_HINT

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
        load_strict(module, obj["students"][name], f"student {name}", f"checkpoint {path}", DISTILL_FIT_HINT)
        ema = arch.students_ema[name]
        load_strict(ema, obj["students_ema"][name], f"student {name} EMA", f"checkpoint {path}", DISTILL_FIT_HINT)
    opt.load_state_dict(obj["optimizer"])
    return int(obj["step"])


def export_properties(
    name: str, which: str, stac_properties: dict[str, Any] | None = None, step: int | None = None
) -> dict[str, Any]:
    """The STAC properties `export_student` gives student `name`'s item (a finished re-run checks an export against
    them: `finished_run.export_is_current`)."""
    props = {"geodino:network": f"student {name} ({which})", **(stac_properties or {})}
    if step is not None:
        props["geodino:step"] = int(step)
    return props


def export_student(
    arch: DistillMetaArch,
    name: str,
    out_dir: Path,
    which: str = "ema",
    normalization: dict[str, Any] | None = None,
    stac_properties: dict[str, Any] | None = None,
    step: int | None = None,
) -> Path:
    """Write a student's backbone in the official layout (`<name>.pth`, `.safetensors`) and its heads
    (`<name>.heads.pth`) under `out_dir/<name>/`, with the input normalisation record of the distillation data,
    and its STAC item (`<name>.stac.json`, `stac_properties` in its properties); return the `.pth` path. `step`:
    the distillation step the weights are from, recorded as a pretraining export records its step (`"step"` in the
    heads file, `geodino:step` in the item)."""
    from geodino.models.checkpoints import save_export

    module = cast("DistillStudent", (arch.students_ema if which == "ema" else arch.students)[name])
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.backbone.state_dict().items()}
    heads = {"dino_head": module.dino_head, "ibot_head": module.ibot_head}
    config = dict(module.backbone.config)  # type: ignore[arg-type]  # the student ViT's (nn.Module attribute)
    props = export_properties(name, which, stac_properties, step)
    extra: dict[str, Any] = {} if step is None else {"step": int(step)}
    out = folder / name
    return save_export(out, state, config, heads, normalization=normalization, stac_properties=props, **extra)[0]
