"""Reading any supported backbone file or model folder (`read_backbone_weights`): the file's backbone (`unwrap`)
completed with what the file records beside its weights (build kwargs and normalisation from the safetensors
metadata or the `X.heads.pth` sidecar, timm's `model_args`), HF and timm folders through their converters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geodino.errors import CheckpointError, ConfigError
from geodino.models.checkpoints.files import (
    SAFETENSORS_CONFIG_KEY,
    BackboneWeights,
    heads_path,
    read_file,
    read_sidecar,
)
from geodino.models.checkpoints.normalization import NORMALIZATION_KEY, check_normalization, from_json, from_mean_std
from geodino.models.checkpoints.unwrap import backbone_state


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
