"""The backbone inside an in-memory checkpoint object: through its wrapper (`{"model": ...}`, an official eval
dump, a geodino training or distill checkpoint), its key prefix (found through the CLS-token key, chosen with
`which` when there are several) and its layout, returned as `BackboneWeights` in the official layout."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from geodino.errors import CheckpointError
from geodino.models.checkpoints.distill import distill_backbone, is_distill_checkpoint
from geodino.models.checkpoints.files import BackboneWeights
from geodino.models.checkpoints.layouts import detect_layout, to_official
from geodino.models.checkpoints.normalization import normalization_of_training


def _tensors(obj: Mapping[str, Any]) -> dict[str, Tensor]:
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


_ANCHORS = ("cls_token", "embeddings.cls_token")


def _prefixes(state: Mapping[str, Any]) -> list[str]:
    """Prefixes under which a backbone lives in `state` (found through its CLS-token key)."""
    out = []
    for k in state:
        for a in _ANCHORS:
            if k == a or k.endswith("." + a):
                p = k[: len(k) - len(a)]
                if a == "cls_token" and p.endswith("embeddings."):
                    continue
                out.append(p)
    return sorted(set(out), key=len)


def _which_matches(prefix: str, which: str) -> bool:
    """Whether `which` names the backbone under `prefix`: the whole prefix, a leading part of it
    (`arch.teacher`), or one of its dotted names (`teacher`); never a substring (`e` named the teacher)."""
    w = which.strip(".")
    p = prefix.rstrip(".")
    return bool(w) and (p == w or p.startswith(w + ".") or w in p.split("."))


def _pick_prefix(state: Mapping[str, Any], path: Path, which: str) -> str:
    found = _prefixes(state)
    if not found:
        raise CheckpointError(
            f"checkpoint {path} holds no ViT backbone (no cls_token key among {len(state)} entries); "
            "pass a DINOv3 backbone, an HF DINOv3ViTModel or a timm *_dinov3 file"
        )
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.rstrip(".") or "<root>" for p in found)
    pick = [p for p in found if _which_matches(p, which)]
    # one backbone may be found under nested prefixes ("arch.teacher." and "arch.teacher.backbone."): those agree
    apart = [p for p in pick if not any(q != p and (p.startswith(q) or q.startswith(p)) for q in pick)]
    if len(apart) > 1:
        raise CheckpointError(
            f"checkpoint {path}: --which {which} (which={which!r} in Python) matches several backbones "
            f"({', '.join(p.rstrip('.') for p in pick)}); name one of {names}"
        )
    if pick:
        # prefer the backbone itself (e.g. "arch.teacher.backbone." over "arch.teacher.")
        return min(pick, key=lambda p: (0 if p.endswith("backbone.") else 1, len(p)))
    raise CheckpointError(
        f"checkpoint {path} holds several backbones ({names}) and --which {which} (which={which!r} in Python) "
        "names none of them; choose one by name or leading part, e.g. --which teacher"
    )


def _strip(state: Mapping[str, Any], prefix: str) -> dict[str, Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, Tensor)}


def backbone_state(
    obj: Any, source: str | Path = "<state_dict>", *, which: str | None = None, timm_args: Any = None
) -> BackboneWeights:
    """The backbone inside an in-memory checkpoint object (any layout and wrapper `read_backbone_weights`
    accepts), in the official layout; `source` names it in errors. `which`: default the teacher (a distill
    checkpoint's only student). `timm_args`: the timm `model_args` the file records (its head count and RoPE
    base), used when the weights are in the timm layout."""
    path = Path(source)
    if is_distill_checkpoint(obj):  # a student's EMA or raw weights (`checkpoints.distill`)
        return distill_backbone(obj, path, which)
    which = which or "teacher"
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict; save model.state_dict() instead"
        )
    config: dict[str, Any] | None = None
    kind = "backbone"
    state: Mapping[str, Any] = obj
    geo = obj.get("geodino") if isinstance(obj.get("geodino"), Mapping) else None
    if geo is not None and isinstance(obj.get("state_dict"), Mapping):
        kind = "geodino-ssl"
        config = dict(geo.get("backbone") or {}) or None
        state = obj["state_dict"]
    elif evals := [k for k in ("teacher", "student") if isinstance(obj.get(k), Mapping)]:
        kind = "official-eval"
        if which not in evals:
            raise CheckpointError(
                f"checkpoint {path} holds the backbone{'s' if len(evals) > 1 else ''} {' and '.join(evals)}, and "
                f"--which {which} (which={which!r} in Python) names none; pass --which {evals[0]}"
            )
        state = obj[which]
    else:
        for key in ("model", "state_dict", "module", "backbone"):
            if isinstance(obj.get(key), Mapping) and not _tensors(obj):
                kind = "wrapped"
                state = obj[key]
                break
    if any(isinstance(v, Mapping) for v in state.values()) and not _prefixes(state):
        # one more level of nesting, e.g. {"model": {"backbone": {...}}}
        for v in state.values():
            if isinstance(v, Mapping) and _prefixes(v):
                state = v
                break
    prefix = _pick_prefix(state, path, which)
    several = kind == "official-eval" or len(_prefixes(state)) > 1
    raw = _strip(state, prefix)
    layout = detect_layout(raw, path)
    hints: dict[str, Any] = {}
    if layout == "timm" and timm_args is not None:
        from geodino.models.checkpoints.timm import timm_layout_hints

        hints = timm_layout_hints(timm_args)
    weights = BackboneWeights(state=to_official(raw, layout, path, **hints), source=path, layout=layout, kind=kind)
    weights.several = several
    if config:
        weights.config = config
    if geo is not None and kind == "geodino-ssl":
        weights.normalization, why = normalization_of_training(geo)
        weights.normalization_from = f"{path.name} (training data config)" if weights.normalization else ""
        if why:
            weights.notes.append(f"no normalisation recorded: {why}")
    if prefix:
        weights.notes.append(f"backbone taken from keys under {prefix!r}")
    return weights
