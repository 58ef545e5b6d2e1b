"""Initialising a training stage from an earlier one (`init_from=`): reading the source, checking that it fits,
and setting the student, teacher, heads and Gram teacher from it.

`read_init_source()` + `apply_init()` implement stage chaining: the next stage's student, teacher and Gram teacher
start from the previous stage's teacher (as the official high-resolution stage does with
`student.resume_from_teacher_chkpt` and `gram.ckpt`); `check_init()` is the same fit check on names and shapes
alone, for an arch built on the meta device (`trainer.meta_init`). Split from `checkpointing.py`, which re-exports
these names, so that each stays one concept under 500 lines. This module checks and applies a source; reading it
is `init_source`'s, its architecture (`from_init`, the differing build kwargs) `init_structure`'s, both names
importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from geodino.errors import CheckpointError, InputError
from geodino.models.checkpoints.files import HEAD_NAMES, check_fits, load_strict, strict_mismatch
from geodino.train.init_source import InitSource, read_init_source, resolve_init_path, split_which
from geodino.train.init_structure import (
    FROM_INIT,
    STRUCTURE_KEYS,
    STUDENT_KEYS,
    architecture_differences,
    architecture_error,
    init_architecture,
)

if TYPE_CHECKING:
    from geodino.train.ssl import SSLMetaArch

__all__ = [
    "DISTILL_FIT_HINT",
    "FIT_HINT",
    "FROM_INIT",
    "STRUCTURE_KEYS",
    "STUDENT_KEYS",
    "InitSource",
    "apply_init",
    "architecture_differences",
    "architecture_error",
    "check_init",
    "init_architecture",
    "read_init_source",
    "resolve_init_path",
    "split_which",
]

# What to do when a file does not fit the module it initialises (the config keys that set the architecture).
FIT_HINT = (
    "it was trained with another architecture: set ssl.student.arch=from_init to build it (with its head sizes), "
    "or set ssl.student.arch, ssl.student.patch_size, ssl.student.in_chans and the ssl.dino/ssl.ibot head sizes "
    "to match it (`geodino info FILE` shows its architecture), or choose another file"
)
# the same for a distillation student, whose architecture is set under students[i]
DISTILL_FIT_HINT = (
    "it was trained with another architecture: set students[i].arch (and the dino/ibot head sizes) to match it "
    "(`geodino info FILE` shows its architecture), or choose another file"
)


def _load(module: nn.Module, state: dict[str, torch.Tensor], what: str, source: Path) -> None:
    load_strict(module, state, what, f"checkpoint {source}", FIT_HINT)


@dataclass
class _InitStep:
    """One module `apply_init` sets: the state it gets, its name in messages, the source it comes from, and whether
    it is a backbone (whose misfit names the differing build kwargs when the file records them)."""

    module: nn.Module
    state: dict[str, torch.Tensor]
    what: str
    src: InitSource
    backbone: bool = False


def _check_patch_embed(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path) -> None:
    """One line for a backbone of another band count, naming what to do: adapt the file's patch embedding with
    `geodino convert --bands` (ssl.student.arch=from_init, which the generic line suggests, builds a model the data's
    bands do not fit)."""
    key = "patch_embed.proj.weight"
    mine, theirs = own.get(key), state.get(key)
    if mine is None or theirs is None or mine.dim() != 4 or theirs.dim() != 4 or mine.shape[0] != theirs.shape[0]:
        return  # absent, or another width: the generic key-by-key message says more (a patch size too)
    if theirs.shape[1] != mine.shape[1]:
        raise CheckpointError(
            f"init_from {path} takes {theirs.shape[1]} input bands but this config builds {mine.shape[1]} "
            "(ssl.student.in_chans, the data's bands); adapt its patch embedding to your bands with `geodino convert "
            f"{path} OUT.pth --bands ...` (docs/integrations.md) and init_from OUT.pth, or train on "
            f"{theirs.shape[1]}-band data"
        )


def _check_step(step: _InitStep) -> None:
    """Raise the one line `apply_init` refuses `step` with, or nothing when it fits. Reads only key names and shapes,
    so a module built on the meta device (`trainer.meta_init`) is checked as a full one is."""
    own = step.module.state_dict()
    if step.backbone:
        # the file records another architecture than this config builds: name the differing fields and the config
        # keys to set (not "incomplete or damaged")
        diff = architecture_differences(step.src.backbone_config, getattr(step.module, "config", None))
        if diff and strict_mismatch(own, step.state)[0]:
            raise architecture_error("init_from", step.src.path, diff)
        _check_patch_embed(own, step.state, step.src.path)
    check_fits(own, step.state, step.what, f"checkpoint {step.src.path}", FIT_HINT)


def _init_steps(
    arch: SSLMetaArch, src: InitSource, student_from: str, gram: InitSource | None, load_gram: bool
) -> tuple[list[_InitStep], list[str], bool]:
    """What `apply_init` sets, in order: the steps, its lines for the log and whether the Gram teacher is set."""
    if student_from not in ("teacher", "student"):
        raise InputError(f"init_student_from={student_from!r} must be 'teacher' or 'student'")
    if student_from == "student" and not src.student:
        kind = f"{'an' if src.kind[0] in 'aeiou' else 'a'} {src.kind}"
        raise CheckpointError(
            f"init_from file {src.path} has no student weights (it is {kind} file); use init_student_from=teacher"
        )
    s_backbone = src.teacher
    if student_from == "student":
        assert src.student is not None  # refused above otherwise
        s_backbone = src.student
    s_heads = src.student_heads if student_from == "student" else src.heads
    student, teacher = arch.student, arch.teacher
    steps = [
        _InitStep(student["backbone"], s_backbone, "student backbone", src, backbone=True),
        _InitStep(teacher["backbone"], src.teacher, "teacher backbone", src, backbone=True),
    ]
    picked = src.names[student_from == "student"]
    done = [f"student backbone <- {picked} of {src.path}; teacher backbone <- {src.names[0]} of {src.path}"]
    if src.layout != "official":
        names = {"hf": "HF DINOv3ViTModel", "timm": "timm"}
        done[0] += f" ({names.get(src.layout, src.layout)} layout, converted to the official one)"
    if src.layout == "timm":
        done.append(f"{src.path} is a timm file, which stores no mask_token: the iBOT mask token starts at zero")
    for h in HEAD_NAMES:
        if h in s_heads and h in student:
            steps.append(_InitStep(student[h], s_heads[h], f"student {h}", src))
        if h in src.heads and h in teacher:
            steps.append(_InitStep(teacher[h], src.heads[h], f"teacher {h}", src))
    if src.has_heads:
        done.append(f"dino_head, ibot_head <- {src.path}")
    else:
        done.append(f"{src.path} has no heads: dino_head and ibot_head start fresh (see head_warmup_steps)")
    gram_module = getattr(arch, "gram_teacher", None)
    with_gram = gram_module is not None and load_gram
    if gram_module is not None and with_gram:
        g = gram or src
        g_module = gram_module["backbone"] if isinstance(gram_module, nn.ModuleDict) else gram_module
        steps.append(_InitStep(g_module, g.teacher, "Gram teacher backbone", g, backbone=True))
        done.append(f"Gram teacher <- {g.names[0]} of {g.path}")
    _local_cls_norm_from_norm(steps)
    return steps, done, with_gram


def _local_cls_norm_from_norm(steps: list[_InitStep]) -> None:
    """Give each backbone step from an HF/timm file a `local_cls_norm` copied from `norm` when the module has one
    (untie_global_and_local_cls_norm, the SAT-493M ViT-L) and the file stores none (neither layout does, and a hub
    file does not record it), as `geodino convert` to the official layout re-creates it: exact for inference (the
    global-crop CLS norm), and the local-crop CLS norm trains from there. It was refused as 2 missing keys. One
    warning per file."""
    import warnings

    told: set[Path] = set()
    for step in steps:
        state = step.state
        if not step.backbone or step.src.layout == "official" or "local_cls_norm.weight" in state:
            continue
        if "norm.weight" not in state or "local_cls_norm.weight" not in step.module.state_dict():
            continue
        step.state = {**state, **{f"local_cls_norm.{k}": state[f"norm.{k}"].clone() for k in ("weight", "bias")
                                  if f"norm.{k}" in state}}  # fmt: skip
        if step.src.path not in told:
            told.add(step.src.path)
            names = {"hf": "HF DINOv3ViTModel", "timm": "timm"}
            warnings.warn(
                f"init_from {step.src.path} ({names.get(step.src.layout, step.src.layout)} layout) stores no "
                "local_cls_norm but this config builds one (untie_global_and_local_cls_norm: true): it starts as a "
                "copy of norm (exact for inference, as geodino convert re-creates it; the local-crop CLS norm trains "
                "from there)",
                stacklevel=4,
            )


def check_init(
    arch: SSLMetaArch,
    src: InitSource,
    *,
    student_from: str = "teacher",
    gram: InitSource | None = None,
    load_gram: bool = True,
) -> None:
    """Raise the one line `apply_init(arch, src, ...)` would refuse `src` with (a key or shape that does not fit,
    another recorded architecture, no student weights), setting nothing. Only names and shapes are compared, so it
    runs on an arch built on the meta device: `trainer.meta_init` checks the fit at start and applies the weights
    once FSDP2 has sharded and allocated the arch."""
    steps, _, _ = _init_steps(arch, src, student_from, gram, load_gram)
    for step in steps:
        _check_step(step)


def apply_init(
    arch: SSLMetaArch,
    src: InitSource,
    *,
    student_from: str = "teacher",
    gram: InitSource | None = None,
    load_gram: bool = True,
) -> list[str]:
    """Initialise `arch` (an SSLMetaArch) from a previous stage; return one line per module set, for the log.

    - student backbone and heads <- the source's teacher (`student_from="teacher"`, official high-res stage) or
      its student (`"student"`, continuing the same student under a new config, e.g. the Gram stage);
    - teacher backbone and heads <- the source's teacher;
    - Gram teacher (when `arch` has one and `load_gram`) <- `gram` if given, else the source's teacher (official:
      the high-res stage's `gram.ckpt` is the Gram stage's teacher).
    Heads are copied only when the source has them; otherwise the fresh heads stay (see `head_warmup_steps`).
    Every module is checked (`check_init`) before any is set, so a source that does not fit changes nothing.
    """
    steps, done, with_gram = _init_steps(arch, src, student_from, gram, load_gram)
    for step in steps:
        _check_step(step)
    for step in steps:
        _load(step.module, step.state, step.what, step.src.path)
    if with_gram:
        mark = getattr(arch, "mark_gram_initialized", None)
        if callable(mark):
            mark()
    return done
