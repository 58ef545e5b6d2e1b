"""The students of a distillation run: each checked against the teacher (patch size, input bands, prototype
counts, build options, `init_from` weights) before the run writes anything, then built with fresh heads of the
teacher's prototype counts."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from geodino.errors import ConfigError
from geodino.train.distill.config import DistillConfig, StudentSpec

if TYPE_CHECKING:
    from geodino.models.heads import DINOHead
    from geodino.models.vit import DinoVisionTransformer
    from geodino.train.distill_arch import DistillStudent

__all__ = ["build_student", "check_student_spec", "check_students"]


def check_student_spec(
    spec: StudentSpec, index: int, teacher_patch: int, k_dino: int | None = None, k_ibot: int | None = None
) -> None:
    """One-line ConfigErrors when a student's patch size or prototype counts differ from the teacher's."""
    where = f"students[{index}] ({spec.name})"
    if spec.patch_size is not None and int(spec.patch_size) != teacher_patch:
        raise ConfigError(
            f"{where}.patch_size={spec.patch_size} differs from the teacher's patch size {teacher_patch}; distillation "
            f"matches patch tokens one to one, so use patch_size={teacher_patch} (or leave it empty)"
        )
    for key, want in (("dino_head_n_prototypes", k_dino), ("ibot_head_n_prototypes", k_ibot)):
        got = getattr(spec, key)
        if want is not None and got is not None and int(got) != want:
            raise ConfigError(
                f"{where}.{key}={got} differs from the teacher head's {want} prototypes; the student learns the "
                f"teacher's prototype assignments, so it needs {want} (or leave it empty)"
            )


def _student_key(index: int, kwarg: str) -> str:
    """The distill config key of a student's build kwarg."""
    return f"students[{index}].arch" if kwarg == "arch" else f"students[{index}].overrides.{kwarg}"


# build options a student takes from the teacher: the config key's word for each, and why they must match
_FROM_TEACHER = {
    "patch_size": ("patch size", "distillation matches patch tokens one to one"),
    "in_chans": ("input band count", "a student reads the teacher's input crops"),
}


def _student_backbone(
    spec: StudentSpec, index: int, teacher: DinoVisionTransformer, device: str | None = None
) -> DinoVisionTransformer:
    """A student's backbone with the teacher's patch size and input bands (`device="meta"`: its shapes only).
    `overrides.patch_size` / `.in_chans` other than the teacher's are refused (they were dropped silently: a
    student asked for patch 16 of a patch-8 teacher trained at patch 8), and a build option `build_model` refuses
    is named by its key (`students[i].overrides`)."""
    from geodino.models import build_model

    overrides = dict(spec.overrides)
    where = f"students[{index}] ({spec.name})"
    for k, (what, why) in _FROM_TEACHER.items():
        want, got = int(getattr(teacher, k)), overrides.pop(k, None)
        if got is not None and (isinstance(got, bool) or not isinstance(got, int) or got != want):
            raise ConfigError(
                f"{where}.overrides.{k}={got!r} differs from the teacher's {what} {want}; {why}, so a student takes "
                f"the teacher's: remove {k} from students[{index}].overrides"
            )
    try:
        return build_model(
            spec.arch,
            patch_size=int(teacher.patch_size),
            in_chans=int(teacher.in_chans),
            drop_path_rate=spec.drop_path_rate,
            device=device,
            **overrides,
        )
    except ConfigError as e:  # "unknown backbone option ... depht": say which config key holds it
        raise ConfigError(f"students[{index}].overrides ({spec.name}): {e}") from None


def _init_state(spec: StudentSpec, index: int, backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone weights of `spec.init_from`, checked to fit `backbone` (a meta one will do): a file that records
    another architecture fails naming what differs and the distill keys to set, any other misfit as load_strict
    says it."""
    from geodino.models.checkpoints import load_strict
    from geodino.models.checkpoints.files import strict_mismatch
    from geodino.train.checkpointing import (
        DISTILL_FIT_HINT,
        architecture_differences,
        architecture_error,
        read_init_source,
    )

    src = read_init_source(spec.init_from)
    state = src.student if src.kind == "training" and src.student else src.teacher
    if strict_mismatch(backbone.state_dict(), state)[0]:
        diff = [
            d
            for d in architecture_differences(src.backbone_config, getattr(backbone, "config", None))
            if d[0] not in ("patch_size", "in_chans")
        ]  # fmt: skip  (those follow the teacher: not a student key)
        if diff:  # name what differs, not "damaged"
            raise architecture_error(f"students[{index}].init_from", src.path, diff, partial(_student_key, index))
        where = f"students[{index}] ({spec.name}) backbone"
        load_strict(backbone, state, where, f"checkpoint {src.path}", DISTILL_FIT_HINT)  # raises: it does not fit
    return state


def check_students(
    cfg: DistillConfig, teacher: DinoVisionTransformer, k_dino: int, k_ibot: int, keep: Any = ()
) -> dict[int, dict[str, torch.Tensor]]:
    """Every student's patch size and prototype counts against the teacher's, its build options and its `init_from`
    file (on the meta device: no weights are allocated), so that a student that cannot be built is refused before
    the run writes anything or warms heads up. Returns the `init_from` weights of the students in `keep` (those
    this process builds), so that their files are read once."""
    states: dict[int, dict[str, torch.Tensor]] = {}
    for i, spec in enumerate(cfg.students):
        check_student_spec(spec, i, int(teacher.patch_size), k_dino, k_ibot)
        backbone = _student_backbone(spec, i, teacher, device="meta")
        if spec.init_from:
            state = _init_state(spec, i, backbone)
            if i in keep:
                states[i] = state
    return states


def build_student(
    spec: StudentSpec,
    index: int,
    teacher: DinoVisionTransformer,
    t_dino: DINOHead,
    t_ibot: DINOHead,
    init_state: dict[str, torch.Tensor] | None = None,
) -> DistillStudent:
    """A DistillStudent with the teacher's patch size, input bands and prototype counts (checked, one line each).
    `init_state`: the `init_from` weights `check_students` read already (None: read here)."""
    from geodino.models.checkpoints import load_strict
    from geodino.models.heads import DINOHead
    from geodino.train.checkpointing import DISTILL_FIT_HINT
    from geodino.train.distill_arch import DistillStudent

    check_student_spec(spec, index, int(teacher.patch_size), int(t_dino.out_dim), int(t_ibot.out_dim))
    backbone = _student_backbone(spec, index, teacher)
    hidden = spec.head_hidden_dim or t_dino.hidden_dim
    bottleneck = spec.head_bottleneck_dim or t_dino.bottleneck_dim
    dino = DINOHead(backbone.embed_dim, t_dino.out_dim, hidden, bottleneck, t_dino.nlayers)
    hidden_i = spec.head_hidden_dim or t_ibot.hidden_dim
    bottleneck_i = spec.head_bottleneck_dim or t_ibot.bottleneck_dim
    ibot = DINOHead(backbone.embed_dim, t_ibot.out_dim, hidden_i, bottleneck_i, t_ibot.nlayers)
    if spec.init_from:
        state = init_state if init_state is not None else _init_state(spec, index, backbone)
        where, source = f"students[{index}] ({spec.name}) backbone", f"checkpoint {Path(spec.init_from).expanduser()}"
        load_strict(backbone, state, where, source, DISTILL_FIT_HINT)
    return DistillStudent(backbone, dino, ibot)
