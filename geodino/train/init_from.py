"""Initialising a training stage from an earlier one (`init_from=`): reading the source, checking that it fits,
and setting the student, teacher, heads and Gram teacher from it.

`read_init_source()` + `apply_init()` implement stage chaining: the next stage's student, teacher and Gram teacher
start from the previous stage's teacher (as the official high-resolution stage does with
`student.resume_from_teacher_chkpt` and `gram.ckpt`); `check_init()` is the same fit check on names and shapes
alone, for an arch built on the meta device (`trainer.meta_init`). Split from `checkpointing.py`, which re-exports
these names, so that each stays one concept under 500 lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodino.errors import CheckpointError, InputError
from geodino.models.checkpoints.files import (
    HEAD_NAMES,
    SAFETENSORS_CONFIG_KEY,
    check_fits,
    heads_path,
    load_file,
    load_strict,
    read_heads,
    strict_mismatch,
)

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
# backbone build kwargs that decide which keys and shapes its state_dict has (what an init source must match)
STRUCTURE_KEYS = ("arch", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "ffn_layer", "ffn_hidden_dim",
                  "n_storage_tokens", "qkv_bias", "proj_bias", "ffn_bias", "mask_k_bias", "norm_layer",
                  "untie_cls_and_patch_norms", "untie_global_and_local_cls_norm")  # fmt: skip
# the pretrain config key of each build kwarg (any other one is an ssl.student.overrides entry)
STUDENT_KEYS = {"arch": "ssl.student.arch", "patch_size": "ssl.student.patch_size", "in_chans": "ssl.student.in_chans"}


# --------------------------------------------------------------------------------------------------------------
# initialisation sources (stage chaining, continuing from official weights)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class InitSource:
    """Weights to start a stage from: a teacher backbone, maybe heads and a student, and where they came from."""

    path: Path
    kind: str  # "training" | "distill" | "export" | "official-teacher" | "backbone"
    teacher: dict[str, torch.Tensor]
    heads: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    student: dict[str, torch.Tensor] | None = None
    student_heads: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    backbone_config: dict[str, Any] | None = None
    layout: str = "official"  # the key layout the file was in: official, hf or timm (converted on reading)
    names: tuple[str, str] = ("teacher", "student")  # what `teacher` and `student` are in the file, for the log

    @property
    def has_heads(self) -> bool:
        return all(h in self.heads for h in HEAD_NAMES)


def read_init_source(path: str | Path) -> InitSource:
    """Read what `init_from` points to.

    Accepted: a geodino training checkpoint, or a run folder / its `checkpoints/` folder (its `last.ckpt`); a
    `geodino distill` checkpoint (`FILE?which=NAME`: student NAME, as `load_backbone` reads it, see
    `_distill_source`); a geodino export (`X.pth`/`X.safetensors`, heads taken from `X.heads.pth` when present); an
    official backbone release (backbone only); an official eval dump `{"teacher": {"backbone.*", "dino_head.*",
    "ibot_head.*"}}`; an HF `DINOv3ViTModel` or timm `*_dinov3` file or folder (backbone only, converted to the
    official layout).
    """
    from geodino.models.checkpoints.distill import is_distill_checkpoint
    from geodino.train.checkpointing import PREFIX, is_training_checkpoint, sub_state  # the checkpoint format

    path, which = split_which(path)
    if not path.exists():
        raise CheckpointError(
            f"init_from file {path} not found; pass a checkpoint of the previous stage (runs/NAME/checkpoints/"
            "last.ckpt), an export (.pth/.safetensors) or an official backbone file"
        )
    path = resolve_init_path(path)
    obj = None if path.is_dir() and not (path / "meta.pt").is_file() else load_file(path)  # None: an HF/timm folder
    if is_distill_checkpoint(obj):
        return _distill_source(obj, path, which)
    if which is not None:
        raise CheckpointError(
            f"init_from {path}?which={which}: ?which= picks a student of a geodino distill checkpoint, and {path} is "
            "not one; drop ?which= (init_student_from picks a pretraining checkpoint's teacher or student)"
        )
    if obj is None:
        return _foreign_source(path)
    if is_training_checkpoint(obj):
        state = obj["state_dict"]
        heads = {h: sub_state(state, f"{PREFIX}teacher.{h}.") for h in HEAD_NAMES}
        sheads = {h: sub_state(state, f"{PREFIX}student.{h}.") for h in HEAD_NAMES}
        return InitSource(
            path=path,
            kind="training",
            teacher=sub_state(state, f"{PREFIX}teacher.backbone."),
            heads={k: v for k, v in heads.items() if v},
            student=sub_state(state, f"{PREFIX}student.backbone."),
            student_heads={k: v for k, v in sheads.items() if v},
            backbone_config=obj["geodino"].get("backbone"),
        )
    if isinstance(obj.get("teacher"), dict):  # official eval dump, or a student/teacher dict
        t = obj["teacher"]
        return InitSource(
            path=path,
            kind="official-teacher",
            teacher=sub_state(t, "backbone.") or {k: v for k, v in t.items() if not k.startswith(HEAD_NAMES)},
            heads={h: s for h in HEAD_NAMES if (s := sub_state(t, f"{h}."))},
        )
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        try:  # a backbone under a prefix the backbone loaders find (`backbone.`, `model.`, `teacher.`...)
            return _foreign_source(path)
        except CheckpointError:
            raise CheckpointError(
                f"checkpoint {path} is a Lightning checkpoint not written by geodino pretrain; export its backbone "
                "as a plain state_dict and pass that to init_from"
            ) from None
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        try:  # a wrapped backbone ({"model": {...}}, ...), read as every backbone loader reads it
            return _foreign_source(path)
        except CheckpointError:
            raise CheckpointError(
                f"checkpoint {path} holds no tensors; pass a backbone state_dict or a training checkpoint"
            ) from None
    if _layout(state) != "official":  # an HF DINOv3ViTModel or timm *_dinov3 file: converted as every loader does
        return _foreign_source(path)
    heads_file = heads_path(path)
    heads: dict[str, dict[str, torch.Tensor]] = {}
    config = None
    if heads_file.is_file():
        heads, rest = read_heads(heads_file)
        config = rest.get("backbone")
    if not config:  # a .safetensors export copied without its sidecar still records its build kwargs
        config = _safetensors_config(path)
    return InitSource(
        path=path, kind="export" if heads else "backbone", teacher=state, heads=heads, backbone_config=config
    )


def split_which(path: str | Path) -> tuple[Path, str | None]:
    """(file, `?which=`) of an `init_from` value (a path that exists with its `?` is whole, as in `parse_spec`)."""
    text = str(path).strip()
    if "?" not in text or Path(text).expanduser().exists():
        return Path(text).expanduser(), None
    head, query = text.split("?", 1)
    key, _, value = query.partition("=")
    if key.strip() != "which" or "&" in value:
        raise CheckpointError(
            f"init_from {text}: init_from accepts one option, ?which=NAME (a student of a geodino distill checkpoint)"
        )
    return Path(head).expanduser(), value.strip() or None


def _distill_source(obj: dict[str, Any], path: Path, which: str | None) -> InitSource:
    """Student NAME of a distill checkpoint (`which` as `load_backbone` reads it): the picked weights (EMA, or NAME.raw)
    are the teacher (backbone, heads), its raw weights the student, its recorded build kwargs the config."""
    from geodino.models.checkpoints.distill import student_init_parts, student_name

    name, ema = student_name(obj, path, which)
    backbone, heads, raw, raw_heads, config = student_init_parts(obj, path, which)
    names = (f"student {name} ({'EMA' if ema else 'raw'})", f"student {name} (raw)")
    return InitSource(path, "distill", backbone, heads, raw, raw_heads, config, names=names)


def resolve_init_path(path: Path) -> Path:
    """The file a folder given as `init_from` stands for: a geodino run folder (`runs/NAME`) or its `checkpoints/`
    folder -> its `last.ckpt` (else its newest step checkpoint); a sharded checkpoint (`meta.pt`) or an HF/timm
    model folder (`config.json`) stays as it is; any other folder is refused in one line."""
    if not path.is_dir() or (path / "meta.pt").is_file() or (path / "config.json").is_file():
        return path
    from geodino.train.checkpoint_folder import latest_checkpoint

    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    last = folder / "last.ckpt"
    found = last if last.exists() else latest_checkpoint(folder)
    if found is not None:
        return found
    if folder is not path or (path / "config.yaml").is_file():
        raise CheckpointError(
            f"init_from run folder {path} has no checkpoint yet (nothing in {folder}); let that run save one (or "
            "finish), or pass a checkpoint or export file"
        )
    raise CheckpointError(
        f"init_from folder {path} is neither a geodino run folder (no checkpoints/), a sharded checkpoint (no "
        "meta.pt) nor an HF/timm model folder (no config.json); pass a checkpoint, an export or a backbone file"
    )


def _layout(state: dict[str, torch.Tensor]) -> str:
    """'official', 'hf' or 'timm' from a state_dict's key names ('official' for keys of no known layout, whose
    misfit `apply_init` then reports key by key)."""
    from geodino.models.checkpoints import detect_layout

    try:
        return detect_layout(state)
    except CheckpointError:
        return "official"


def _foreign_source(path: Path) -> InitSource:
    """An HF (`DINOv3ViTModel` folder or `model.safetensors`) or timm (`*_dinov3` file or folder) backbone as an
    init source: converted to the official layout by the same reader every backbone loader uses. Neither layout
    stores heads; timm stores no mask token (it starts at zero); a `local_cls_norm` the file records its official
    model had is re-created as a copy of `norm` (the local-crop CLS norm then trains from there)."""
    from geodino.models.checkpoints import read_backbone_weights

    weights = read_backbone_weights(path)
    state = dict(weights.state)
    if weights.local_cls_norm and "local_cls_norm.weight" not in state and "norm.weight" in state:
        state["local_cls_norm.weight"] = state["norm.weight"].clone()
        state["local_cls_norm.bias"] = state["norm.bias"].clone()
    return InitSource(path=path, kind="backbone", teacher=state, backbone_config=weights.config, layout=weights.layout)


FROM_INIT = "from_init"  # ssl.student.arch value: take the architecture (and head sizes) from init_from


def init_architecture(src: InitSource) -> tuple[str, int, int, dict[str, Any], dict[str, dict[str, Any]]]:
    """(arch, patch_size, in_chans, build overrides, head sizes) that rebuild `src`'s teacher backbone exactly, for
    `ssl.student.arch: from_init`: the build kwargs the file records, else those its shapes imply (`infer_config`);
    per head ({} without) its `head_*` sizes and `head_last_layer` (normalized: weight_g all 1); drop path: config's."""
    from geodino.models.archs import ARCHS
    from geodino.models.checkpoints import infer_config

    config = dict(src.backbone_config or infer_config(src.teacher, src.path))
    arch = config.pop("arch", None)
    arch = arch if arch in ARCHS else "vit_small"  # a base whose every structural default is overridden below
    patch, chans = int(config.pop("patch_size")), int(config.pop("in_chans"))
    config.pop("drop_path_rate", None)
    heads: dict[str, dict[str, Any]] = {}
    for name, state in src.heads.items():
        last, g = state.get("last_layer.weight", state.get("last_layer.weight_v")), state.get("last_layer.weight_g")
        mlp = sorted(k for k in state if k.startswith("mlp.") and k.endswith(".weight"))
        if last is None or not mlp:
            continue
        heads[name] = {
            "head_n_prototypes": int(last.shape[0]),
            "head_bottleneck_dim": int(last.shape[1]),
            "head_hidden_dim": int(state[mlp[0]].shape[0]) if len(mlp) > 1 else int(last.shape[1]),
            "head_nlayers": len(mlp),
            "head_last_layer": "linear" if g is None else "normalized" if bool((g == 1).all()) else "weight_norm",
        }
    return arch, patch, chans, config, heads


def _safetensors_config(path: Path) -> dict[str, Any] | None:
    """The build kwargs in a `.safetensors` export's metadata (None for any other file, or when absent)."""
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(SAFETENSORS_CONFIG_KEY)
        config = json.loads(text) if text else None
    except Exception:  # the tensors already read; the metadata is only an optional record
        return None
    return config if isinstance(config, dict) and config else None


def architecture_differences(
    recorded: dict[str, Any] | None, built: dict[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """(build kwarg, value recorded in the file, value this config builds) for each structural field that differs;
    [] when either side records nothing (then a file that does not fit may just be incomplete)."""
    if not recorded or not built:
        return []
    return [
        (k, recorded[k], built[k]) for k in STRUCTURE_KEYS if k in recorded and k in built and recorded[k] != built[k]
    ]


def _yaml_value(v: Any) -> str:
    """`v` as written in a dotted `key=value` override."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def architecture_error(
    label: str, path: Path, diff: list[tuple[str, Any, Any]], key_of: Callable[[str], str] | None = None
) -> CheckpointError:
    """One line naming what `path` was trained with, what this config builds, and the keys to set: `key_of(kwarg)`
    names a build kwarg's config key (default: pretrain's `ssl.student.*`)."""
    pretraining = key_of is None
    key_of = key_of or (lambda k: STUDENT_KEYS.get(k, f"ssl.student.overrides.{k}"))
    old = ", ".join(f"{k}={a!r}" for k, a, _ in diff)
    new = ", ".join(f"{k}={b!r}" for k, _, b in diff)
    keys = ", ".join(f"{key_of(k)}={_yaml_value(a)}" for k, a, _ in diff)
    whole = f"ssl.student.arch={FROM_INIT} to build the file's architecture, or " if pretraining else ""
    return CheckpointError(
        f"{label} {path} was trained with {old} but this config builds {new}; set {keys} ({whole}init from a "
        "matching run)"
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
    arch: nn.Module, src: InitSource, student_from: str, gram: InitSource | None, load_gram: bool
) -> tuple[list[_InitStep], list[str], bool]:
    """What `apply_init` sets, in order: the steps, its lines for the log and whether the Gram teacher is set."""
    if student_from not in ("teacher", "student"):
        raise InputError(f"init_student_from={student_from!r} must be 'teacher' or 'student'")
    if student_from == "student" and not src.student:
        kind = f"{'an' if src.kind[0] in 'aeiou' else 'a'} {src.kind}"
        raise CheckpointError(
            f"init_from file {src.path} has no student weights (it is {kind} file); use init_student_from=teacher"
        )
    s_backbone = src.student if student_from == "student" else src.teacher
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
    if with_gram:
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
    arch: nn.Module,
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
    arch: nn.Module,
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
