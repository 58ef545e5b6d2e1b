"""Backbone checkpoints: reading any supported file into the official layout, building its model, band
adaptation, saving and conversion between layouts. The public functions live here; the parts are:

- `files`: the one safe reader (files and sharded folders), the one strict loader, the heads sidecar;
- `infer`: the architecture of a state_dict from its shapes (RoPE periods, default heads);
- `bands`: band adaptation of the patch embedding (`resolve_bands`);
- `hf`, `timm`: the Hugging Face transformers and timm layouts (sharing `keymap`);
- `save`: writing backbones and exports (`save_backbone`, `save_export`); `reproducible`: their byte-reproducible
  writers (a fixed zip root in `.pth` files, sorted safetensors metadata);

Accepted inputs, all turned into the official DINOv3 state_dict layout:

- official backbone releases `dinov3_*_pretrain_{lvd1689m,sat493m}-*.pth` (plain state_dict);
- official eval dumps `{"teacher": {"backbone.*", "dino_head.*", "ibot_head.*"}}`;
- geodino training checkpoints (`{"state_dict": {"arch.teacher.backbone.*", ...}, "geodino": {...}}`), distill
  checkpoints (a student's EMA or raw weights: `distill`) and exports (`X.pth` / `X.safetensors`, build kwargs
  in the safetensors metadata or the `X.heads.pth` sidecar);
- `{"model": ...}` / `{"state_dict": ...}` wrappers with any key prefix;
- Hugging Face transformers `DINOv3ViTModel` files or folders (`config.json` + `model.safetensors`) and timm
  `vit_*_patch16_dinov3` (Eva) state_dicts.

The architecture is inferred from the shapes (`infer_config`), so a file alone is enough to build its model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from geodino.errors import CheckpointError, ConfigError
from geodino.models.checkpoints.bands import (
    RGB,
    adapt_patch_embed,
    adapt_state_bands,
    match_bands,
    resolve_bands,
    same_bands,
    weights_to_bands,
)
from geodino.models.checkpoints.distill import distill_backbone, is_distill_checkpoint
from geodino.models.checkpoints.files import (
    HEAD_NAMES,
    HEADS_SUFFIX,
    SAFETENSORS_CONFIG_KEY,
    BackboneWeights,
    heads_path,
    incomplete_hint,
    load_file,
    load_strict,
    read_file,
    read_heads,
    read_sidecar,
    strict_mismatch,
    write_heads,
)
from geodino.models.checkpoints.infer import default_heads, infer_config, rope_periods
from geodino.models.checkpoints.normalization import (
    NORMALIZATION_KEY,
    check_normalization,
    from_json,
    from_mean_std,
    from_run_config,
)
from geodino.models.checkpoints.save import export_paths, save_backbone, save_export, save_pth, save_safetensors

if TYPE_CHECKING:
    from geodino.models.vit import DinoVisionTransformer

__all__ = [
    "HEADS_SUFFIX",
    "HEAD_NAMES",
    "LAYOUTS",
    "RGB",
    "BackboneWeights",
    "adapt_patch_embed",
    "adapt_state_bands",
    "backbone_state",
    "build_from_state",
    "check_architecture",
    "check_fits",
    "check_which",
    "convert_checkpoint",
    "default_heads",
    "detect_layout",
    "export_paths",
    "heads_path",
    "infer_config",
    "load_file",
    "load_model",
    "load_strict",
    "load_weights",
    "match_bands",
    "normalization_of_training",
    "read_backbone_weights",
    "read_file",
    "read_heads",
    "resolve_bands",
    "rope_periods",
    "same_bands",
    "save_backbone",
    "save_export",
    "save_pth",
    "save_safetensors",
    "to_official",
    "write_heads",
]

# ----------------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------------


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


def check_which(weights: BackboneWeights, which: str | None) -> None:
    """Refuse a `which` given for a file holding one backbone: there is nothing to choose, and ignoring it would
    hide a wrong file (an export passed where the training checkpoint was meant)."""
    if which is not None and not weights.several:
        raise ConfigError(
            f"--which {which} (which={which!r} in Python and backbone specs): {weights.source} holds one backbone, "
            "not a training checkpoint with a teacher and a student, so there is nothing to choose; drop --which"
        )


def read_backbone_weights(path: str | Path, *, which: str | None = None) -> BackboneWeights:
    """Read any supported file or HF folder and return its backbone in the official layout.

    `which` selects the backbone inside checkpoints holding several (teacher/student, or any key prefix; default
    the teacher); given for a file holding one backbone, it is refused (`check_which`) rather than ignored.
    """
    if not str(path).strip():  # Path("") is "." (this folder): "checkpoint folder . has no config.json"
        raise CheckpointError("empty checkpoint path; pass a backbone file or an HF/timm model folder")
    weights = _read_backbone_weights(Path(path).expanduser(), which)
    check_which(weights, which)
    return weights


def _read_backbone_weights(path: Path, which: str | None) -> BackboneWeights:
    from geodino.models.checkpoints.folders import model_folder_of

    path = model_folder_of(path)  # an HF/timm folder's weights file: the folder, whose config.json completes it
    if path.is_dir():
        from geodino.models.checkpoints.timm import is_timm_folder, read_timm_folder

        if is_timm_folder(path):
            return read_timm_folder(path)
        from geodino.models.checkpoints.hf import read_hf_folder

        return read_hf_folder(path)
    obj, meta = read_file(path)
    config: dict[str, Any] | None = None
    if SAFETENSORS_CONFIG_KEY in meta:
        try:
            config = json.loads(meta[SAFETENSORS_CONFIG_KEY]) or None
        except json.JSONDecodeError:
            config = None
    weights = backbone_state(obj, path, which=which, timm_args=_timm_model_args(meta, path))
    if SAFETENSORS_CONFIG_KEY in meta:
        weights.kind = "geodino-export" if weights.kind == "backbone" else weights.kind
        weights.config = weights.config or config
    side = read_sidecar(path) if weights.kind in ("backbone", "geodino-export") else {}
    if weights.config is None and weights.kind == "backbone":
        cfg = side.get("backbone")
        weights.config = dict(cfg) if isinstance(cfg, Mapping) and cfg else None
        if weights.config is not None:
            weights.kind = "geodino-export"
    if weights.normalization is None:
        _file_normalization(weights, meta, side, path)
    if weights.layout == "timm":  # whether the official model has the local_cls_norm timm does not store
        from geodino.models.checkpoints.timm import recorded_local_norm

        weights.local_cls_norm = recorded_local_norm(meta)
        if weights.local_cls_norm is None and path.suffix in (".pth", ".pt"):
            weights.local_cls_norm = recorded_local_norm(read_sidecar(path))
    return weights


def _timm_model_args(meta: Mapping[str, str], path: Path) -> Any:
    """The timm `model_args` a timm-layout file records (safetensors metadata, else its `.heads.pth` sidecar):
    the head count and RoPE base its state_dict cannot show."""
    if meta.get("model_args"):
        return meta["model_args"]
    return read_sidecar(path).get("model_args") if path.suffix in (".pth", ".pt") else None


def _file_normalization(weights: BackboneWeights, meta: Mapping[str, str], side: Mapping[str, Any], path: Path) -> None:
    """Fill `weights.normalization` from the safetensors metadata (geodino's record, else a timm
    `pretrained_cfg`) or the `X.heads.pth` sidecar."""
    if meta.get(NORMALIZATION_KEY):
        weights.normalization = from_json(meta[NORMALIZATION_KEY], f"checkpoint {path}")
        weights.normalization_from = f"{path.name} (safetensors metadata {NORMALIZATION_KEY})"
    elif side.get("normalization"):
        weights.normalization = check_normalization(side["normalization"], f"sidecar of {path}")
        weights.normalization_from = f"{heads_path(path).name} (sidecar of {path.name})"
    elif meta.get("pretrained_cfg"):
        try:
            cfg = json.loads(meta["pretrained_cfg"])
        except json.JSONDecodeError:
            return
        if isinstance(cfg, Mapping) and cfg.get("mean") and cfg.get("std"):
            weights.normalization = from_mean_std(cfg["mean"], cfg["std"], origin="timm pretrained_cfg")
            weights.normalization_from = f"{path.name} (safetensors metadata pretrained_cfg)"


def normalization_of_training(geo: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(record, why not) of a training checkpoint's `geodino` entry: its recorded `normalization`, else the one
    its data config standardises with (`geodino.data.normalization.data_normalization`)."""
    if geo.get("normalization"):
        return check_normalization(geo["normalization"], "training checkpoint"), ""
    return from_run_config(geo.get("config"))


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


def detect_layout(state: Mapping[str, Tensor], path: str | Path = "<state_dict>") -> str:
    """'official', 'hf' or 'timm' from the key names."""
    keys = set(state)
    if "embeddings.patch_embeddings.weight" in keys or any(k.startswith(("layer.0.", "model.layer.0.")) for k in keys):
        return "hf"
    if "reg_token" in keys or "blocks.0.gamma_1" in keys or "blocks.0.mlp.fc1_g.weight" in keys:
        return "timm"
    if "blocks.0.attn.q_bias" in keys:
        return "timm"
    if "patch_embed.proj.weight" in keys and "cls_token" in keys:
        return "official"
    raise CheckpointError(
        f"checkpoint {path}: unknown key layout (e.g. {sorted(keys)[:3]}); expected the official DINOv3, HF "
        "DINOv3ViTModel or timm *_dinov3 layout"
    )


def to_official(
    state: Mapping[str, Tensor],
    layout: str,
    path: str | Path = "<state_dict>",
    *,
    num_heads: int | None = None,
    rope_base: float = 100.0,
) -> dict[str, Tensor]:
    """Convert a state_dict from `layout` to the official layout (a shallow copy when already official).

    HF and timm files store no RoPE periods, so the head count (which sets the periods' length) comes from
    `num_heads`, else from the architecture table for the width (HF folders carry it in config.json).
    """
    if layout == "official":
        return dict(state)
    if layout == "hf":
        from geodino.models.checkpoints.hf import hf_to_official

        return hf_to_official(state, num_heads=num_heads, rope_theta=rope_base)
    if layout == "timm":
        from geodino.models.checkpoints.timm import timm_to_official

        return timm_to_official(state, num_heads=num_heads, rope_base=rope_base)
    raise CheckpointError(f"checkpoint {path}: unknown layout {layout!r}; use official, hf or timm")


# ----------------------------------------------------------------------------------------------------------------
# strict loading and building
# ----------------------------------------------------------------------------------------------------------------


def _fit_hint(model: nn.Module, state: Mapping[str, Tensor], own_config: bool = False) -> str:
    """What to do when `state` does not fit `model`: adapt the bands when only the patch embedding differs; a
    model built from the file's own config can only mismatch an inconsistent (incomplete or damaged) file."""
    own = model.state_dict()
    if own_config:
        return (
            "its keys do not make up one ViT (geodino reads the architecture from the file itself), so the file is "
            "incomplete or damaged: re-export or re-download it"
        )
    _, shapes = strict_mismatch(own, state)
    if shapes and set(own) == set(state) and all(k == "patch_embed.proj.weight" for k, _, _ in shapes):
        _, a, b = shapes[0]
        return (
            f"the file has {a.shape[1]} input bands and the model {b.shape[1]}: adapt the patch embedding to your "
            "bands (load_backbone(spec, bands=[names]) or spec '?bands=B02,B03,...', "
            "geodino.models.checkpoints.adapt_patch_embed)"
        )
    return (
        f"{incomplete_hint(own, state)}build the architecture of the file (geodino info FILE shows it) or choose "
        "another checkpoint"
    )


def check_fits(model: nn.Module, state: Mapping[str, Tensor], source: str | Path, *, own_config: bool = False) -> None:
    """Raise one CheckpointError line naming the mismatching keys and shapes (and suggesting band adaptation);
    `own_config`: the model was built from the file's own (recorded or inferred) architecture."""
    problem, _ = strict_mismatch(model.state_dict(), state)
    if problem:
        hint = _fit_hint(model, state, own_config)
        raise CheckpointError(f"checkpoint {source} does not fit the model ({problem}); {hint}")


def load_weights(
    model: nn.Module, state: Mapping[str, Tensor], source: str | Path = "<state_dict>", *, own_config: bool = False
) -> nn.Module:
    """`load_strict` into a backbone, with the band-adaptation hint when only the bands differ."""
    check_fits(model, state, source, own_config=own_config)
    return load_strict(model, state, "model", f"checkpoint {source}")


def build_from_state(
    state: Mapping[str, Tensor],
    config: Mapping[str, Any] | None = None,
    *,
    source: str | Path = "<state_dict>",
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> DinoVisionTransformer:
    """Build the model `state` belongs to (config from the file, else inferred) and load it strictly."""
    from geodino.models import build_model

    cfg = dict(infer_config(state, source))
    if config:
        # the file's own kwargs win for settings that leave no trace in the weights (RoPE augmentation ...)
        cfg.update({k: v for k, v in config.items() if k in cfg})
    # the weights decide what they decide
    cfg["in_chans"] = int(state["patch_embed.proj.weight"].shape[1])
    cfg.update(overrides)
    arch = cfg.pop("arch", None)
    model = build_model(arch, device="meta", **cfg)
    load_weights(model, state, source, own_config=not overrides)
    if device is not None and str(device) != "cpu":
        model = model.to(device)
    model.config["arch"] = arch
    return model


def load_model(
    path: str | Path | BackboneWeights,
    *,
    bands: Sequence[str] | None = None,
    src_bands: Sequence[str] | None = None,
    fill: str = "mean",
    which: str | None = None,
    device: str | torch.device = "cpu",
    sensor: Any = None,
    subset: str = "copy",
    **overrides: Any,
) -> DinoVisionTransformer:
    """A DinoVisionTransformer from any supported file or HF folder, architecture inferred.

    With `bands` (names), the patch embedding is adapted from the file's bands (`src_bands`, default R, G, B
    for 3-band files) when they differ; see `adapt_patch_embed`. `sensor` names the sensor `bands` are named
    after (Landsat 7 SR_B1..SR_B7 and Landsat 8 number their bands differently). `subset`: the rule for a subset
    of the file's bands ("copy": the trained kernels unscaled; "rescale": scaled by C_src / C_dst, the rule before).
    `path` may be the `BackboneWeights` `read_backbone_weights` gave (the file is then not read again).
    """
    weights = path if isinstance(path, BackboneWeights) else read_backbone_weights(path, which=which)
    state = weights.state
    if bands is not None:
        state = weights_to_bands(weights, bands, src_bands=src_bands, sensor=sensor, fill=fill, subset=subset)
    return build_from_state(state, weights.config, source=weights.source, device=device, **overrides)


def __getattr__(name: str) -> Any:
    """`convert_checkpoint`, `check_architecture` and `LAYOUTS` live in `convert.py` (the `geodino convert` job)."""
    if name in ("convert_checkpoint", "check_architecture", "LAYOUTS"):
        from geodino.models.checkpoints import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
