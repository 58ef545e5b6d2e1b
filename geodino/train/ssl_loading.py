"""Weights into an SSL meta-architecture from outside: the Gram teacher from a checkpoint or state dict, and
student and teacher (backbone, optional heads) from a teacher state dict, each loaded strictly with the fit hint."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from geodino.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from geodino.train.ssl import SSLMetaArch


def _backbone(state: Mapping[str, Any], source: str) -> dict[str, Tensor]:
    """Backbone weights (official layout) of a backbone, teacher, Lightning or geodino checkpoint dict."""
    from geodino.models.checkpoints import backbone_state

    return backbone_state(state, source).state


def _load_strict(module: nn.Module, state: Mapping[str, Tensor], what: str, source: str) -> None:
    from geodino.models.checkpoints import load_strict
    from geodino.train.checkpointing import FIT_HINT

    load_strict(module, state, what, source, FIT_HINT)


def load_gram_teacher(arch: SSLMetaArch, source: str | Path | Mapping[str, Any]) -> None:
    """Gram teacher backbone from a checkpoint path or state dict (backbone, teacher or training checkpoint)."""
    if arch.gram_teacher is None:
        raise ConfigError("gram.ckpt is set but no separate Gram teacher is used; set gram.use_loss=true")
    where = f"Gram checkpoint {source}" if isinstance(source, (str, Path)) else "Gram teacher state_dict"
    if isinstance(source, (str, Path)):
        from geodino.train.init_from import read_init_source, split_which

        path = split_which(source)[0]  # FILE?which=NAME (a distill student): FILE must exist
        if not path.exists():
            raise CheckpointError(f"checkpoint {path} not found; fix gram.ckpt (or init_from) to an existing file")
        # what init_from reads (a run folder, HF/timm files and folders too), its teacher backbone, official layout
        backbone = read_init_source(source).teacher
    else:
        backbone = _backbone(source, str(source))
    _load_strict(arch.gram_teacher["backbone"], backbone, "Gram teacher", where)
    arch.mark_gram_initialized()


def init_from_teacher_state(
    arch: SSLMetaArch, state: Mapping[str, Any], *, heads: bool = True, source: str = ""
) -> list[str]:
    """Student, teacher (and Gram teacher) of `arch` from a teacher state dict: `backbone.*` (+ `dino_head.*`,
    `ibot_head.*`) or a bare backbone state dict. Heads missing from `state` stay freshly initialised; returns
    what was loaded."""
    where = source or "teacher state_dict"
    backbone = _backbone(state, where)
    _load_strict(arch.student["backbone"], backbone, "student backbone", where)
    _load_strict(arch.teacher["backbone"], backbone, "teacher backbone", where)
    done = ["backbone"]
    inner = state.get("teacher", state) if isinstance(state.get("teacher"), Mapping) else state
    for name in ("dino_head", "ibot_head"):
        sub = {k[len(name) + 1 :]: v for k, v in inner.items() if k.startswith(name + ".")}
        if heads and sub:
            _load_strict(arch.student[name], sub, f"student {name}", where)
            _load_strict(arch.teacher[name], sub, f"teacher {name}", where)
            done.append(name)
    if arch.gram_teacher is not None and not arch.cfg.gram.ckpt:
        arch.snapshot_gram_from_teacher()
        done.append("gram_teacher")
    return done
