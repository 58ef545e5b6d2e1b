"""A student's backbone out of a `geodino distill` checkpoint (`format: geodino-distill`, written by
`geodino.train.distill.export.save_checkpoint`): every student's EMA (`students_ema`) and raw weights (`students`),
each a `{backbone.*, dino_head.*, ibot_head.*}` state_dict, with the students' build kwargs (`backbones`) and the run
config, so a run stopped early can be probed or embedded from its newest checkpoint.

`which` picks the student, spelled as pretraining checkpoints spell `which=teacher|student` (the name of the network):
`NAME` is the student's EMA, what the run exports by default (`train.export=ema`, as official distillation dumps),
`NAME.raw` its raw weights (`train.export=student`; `NAME.student` and `NAME.ema` are read too, as are the file's own
key paths `students_ema.NAME` / `students.NAME`). A checkpoint of one student needs no `which`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from geodino.errors import CheckpointError
from geodino.models.checkpoints.files import BackboneWeights
from geodino.models.checkpoints.normalization import from_run_config

__all__ = [
    "DISTILL_FORMAT",
    "distill_backbone",
    "is_distill_checkpoint",
    "parse_student_which",
    "student_config",
    "student_init_parts",
    "student_name",
    "student_state",
]

DISTILL_FORMAT = "geodino-distill"  # geodino.train.distill.export.FORMAT (not imported: models never import train)

_EMA = ("ema",)
_RAW = ("raw", "student")


def is_distill_checkpoint(obj: Any) -> bool:
    """Whether `obj` (a loaded checkpoint) is a `geodino distill` checkpoint."""
    return isinstance(obj, Mapping) and obj.get("format") == DISTILL_FORMAT and isinstance(obj.get("students"), Mapping)


def _spelling(names: list[str]) -> str:
    """The two spellings of a student, as a spec (`FILE?which=`) and as `geodino convert`'s option (`--which`)."""
    first = names[0]
    return (
        f"which={first} (its EMA, what the run exports) or which={first}.raw (its raw weights), as FILE?which=... "
        f"in a backbone spec, --which {first} in geodino convert, which='{first}' in Python"
    )


def parse_student_which(which: str | None, names: list[str], path: Path) -> tuple[str, bool]:
    """(student name, EMA?) that `which` names among the checkpoint's `names`; one CheckpointError line otherwise.
    None picks the only student; with several it lists them and the spelling."""
    listed = ", ".join(names)
    n = len(names)
    if which is None:
        if n == 1:
            return names[0], True
        raise CheckpointError(
            f"checkpoint {path} is a geodino distill checkpoint of {n} students ({listed}); choose one with "
            f"{_spelling(names)}"
        )
    w = which.strip().strip(".").removesuffix(".backbone")
    ema = True
    head, _, tail = w.partition(".")
    if head in ("students_ema", "students") and tail in names:  # the file's own key paths
        w, ema = tail, head == "students_ema"
    elif "." in w:
        name, _, variant = w.rpartition(".")
        if variant in _EMA + _RAW:
            w, ema = name, variant in _EMA
    if w in names:
        return w, ema
    hint = ""
    if w in ("teacher", "student"):
        hint = " (a distill checkpoint keeps the students only: the teacher is the run's teacher.spec)"
    raise CheckpointError(
        f"checkpoint {path}: --which {which} (which={which!r} in Python) names no student of this geodino distill "
        f"checkpoint{hint}; its student{'s are' if n > 1 else ' is'} {listed}: pass {_spelling(names)}"
    )


def _normalization(obj: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The input normalisation the students were distilled with (the run's data config), as the export records
    it: the record the run saved (with the sensors its loader resolved), else its data config's
    (`data_normalization(cfg.data, "distillation")`: checkpoints before the record); (None, why) when neither tells."""
    if isinstance(obj.get("normalization"), Mapping):
        return dict(obj["normalization"]), ""
    return from_run_config(obj.get("config"), "distillation")


def student_name(obj: Mapping[str, Any], path: Path, which: str | None) -> tuple[str, bool]:
    """(student name, EMA?) that `which` picks in a loaded distill checkpoint `obj` (see the module docstring)."""
    names = [str(k) for k in obj["students"]]
    if not names:
        raise CheckpointError(f"checkpoint {path} is a geodino distill checkpoint holding no student; re-run distill")
    return parse_student_which(which, names, path)


def student_state(obj: Mapping[str, Any], path: Path, name: str, ema: bool) -> dict[str, Tensor]:
    """Student `name`'s full state_dict (`backbone.*`, `dino_head.*`, `ibot_head.*`): its EMA or its raw weights;
    one line when the entry or its backbone is missing."""
    group = "students_ema" if ema else "students"
    full = (obj.get(group) or {}).get(name)
    if not isinstance(full, Mapping):
        raise CheckpointError(f"checkpoint {path} has no {group}[{name!r}]: it is incomplete or damaged")
    if not isinstance(full.get("backbone.cls_token"), Tensor):
        raise CheckpointError(
            f"checkpoint {path}: {group}[{name!r}] holds no backbone.cls_token key: it is incomplete or damaged"
        )
    return {str(k): v for k, v in full.items() if isinstance(v, Tensor)}


def student_config(obj: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Student `name`'s build kwargs as the checkpoint records them (None when absent)."""
    cfg = (obj.get("backbones") or {}).get(name)
    return dict(cfg) if isinstance(cfg, Mapping) and cfg else None


def distill_backbone(obj: Mapping[str, Any], path: Path, which: str | None) -> BackboneWeights:
    """The backbone of the student `which` names (see the module docstring) in a loaded distill checkpoint `obj`,
    in the official layout, with its build kwargs and the distillation data's normalisation."""
    name, ema = student_name(obj, path, which)
    group = "students_ema" if ema else "students"
    full = student_state(obj, path, name, ema)
    state = {k[len("backbone.") :]: v for k, v in full.items() if k.startswith("backbone.")}
    weights = BackboneWeights(state=state, source=path, layout="official", kind=DISTILL_FORMAT)
    weights.several = True  # EMA and raw weights of each student: `which` always has something to choose
    weights.config = student_config(obj, name)
    step = obj.get("step")
    at = f", step {int(step)}" if step is not None else ""
    weights.network = f"student {name} ({'ema' if ema else 'raw'}){at}"
    weights.normalization, why = _normalization(obj)
    weights.normalization_from = f"{path.name} (distillation data config)" if weights.normalization else ""
    if why:
        weights.notes.append(f"no normalisation recorded: {why}")
    weights.notes.append(f"backbone taken from {group}[{name!r}]")
    return weights


def _split(full: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, dict[str, Tensor]]]:
    """(backbone, {head name: head}) of a student's full state_dict, prefixes removed."""
    parts: dict[str, dict[str, Tensor]] = {}
    for k, v in full.items():
        head, _, rest = k.partition(".")
        if rest and head in ("backbone", "dino_head", "ibot_head"):
            parts.setdefault(head, {})[rest] = v
    return parts.pop("backbone", {}), parts


def student_init_parts(
    obj: Mapping[str, Any], path: Path, which: str | None
) -> tuple[dict[str, Tensor], dict[str, dict[str, Tensor]], dict[str, Tensor], dict[str, dict[str, Tensor]], Any]:
    """What `init_from: FILE?which=...` takes from a distill checkpoint (`which` read as `distill_backbone` reads
    it): (picked backbone, its heads, the student's raw backbone, its raw heads, its build kwargs)."""
    name, ema = student_name(obj, path, which)
    picked = student_state(obj, path, name, ema)
    backbone, heads = _split(picked)
    raw, raw_heads = _split(student_state(obj, path, name, False)) if ema else (backbone, heads)
    return backbone, heads, raw, raw_heads, student_config(obj, name)
