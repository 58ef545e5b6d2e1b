"""What `init_from` points to, read as an `InitSource` (a teacher backbone, maybe heads and a student, and where they
came from): a geodino training or distill checkpoint, a run folder, an export, an official release or eval dump, or
an HF/timm backbone converted to the official layout."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geodino.errors import CheckpointError
from geodino.models.checkpoints.files import HEAD_NAMES, SAFETENSORS_CONFIG_KEY, heads_path, load_file, read_heads


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
    if obj is not None and is_distill_checkpoint(obj):
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
    heads = {}
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
