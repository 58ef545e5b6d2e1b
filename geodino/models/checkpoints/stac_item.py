"""A STAC Item for every export: the Machine Learning Model extension (MLM v1.4.0) describing the backbone, so
model catalogues (STAC browsers, `stac-fastapi`, QGIS) can list, search and load geodino exports.

`X.stac.json` sits next to `X.pth`, `X.safetensors` and `X.heads.pth` (`save_export` writes it last, atomically, so
a killed or refused export leaves none). It holds:

- `id`: `X-<12 hex digits of a sha256 over the checksums of X.pth, X.safetensors and X.heads.pth>`, unique across
  runs whose exports share a name, and across exports of the same weights with another record or config;
- `mlm:name`, `mlm:architecture` ("Vision Transformer"), `mlm:tasks` (`similarity-search`: the schema allows only
  its enumerated tasks, and a backbone without a task head gives embeddings, compared by similarity),
  `mlm:framework` ("PyTorch", the spelling of the spec's list) and its version, `mlm:pretrained`,
  `mlm:pretrained_source`, `mlm:total_parameters`, `mlm:hyperparameters` (the build kwargs);
- `mlm:input`: the bands (the normalisation record's names, else `band_1` ...), shape `[-1, C, -1, -1]` (any batch,
  any height and width that are multiples of the patch size: RoPE), and `value_scaling` as one z-score per band.
  MLM applies it to the data as a consumer reads it, so a record with a DN scale has its reflectance mean/std folded
  into DN units ((DN * s + o - mean) / std, what `geodino.data.sensors.Sensor.normalize` computes); the
  description gives the reflectance statistics for float input;
- `mlm:output`: the class token `[-1, D]` and the patch tokens `[-1, -1, D]` (what `geodino embed` maps);
- assets: `X.pth` (`mlm:artifact_type` `torch.save`) and `X.safetensors` (`safetensors.torch.save_file`), both
  with role `mlm:model`, and the heads sidecar, each with `file:size` and `file:checksum` (sha256 multihash: the
  weights are byte-reproducible, so the checksum identifies them; the item itself records when it was written);
- geometry and bbox: the training data's extent when the run recorded one (`train.data_extent`: its rasters' union
  footprint, ROI applied, with the extent of the model it started from), else null (as STAC allows), and the
  property `geodino:extent_note` says why (data without a CRS, sources without a footprint, a failed computation).

Plain dicts and the standard library (no pystac, which is an optional extra); tests read the item back with pystac.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "MLM_SCHEMA",
    "distill_properties",
    "export_item",
    "export_item_id",
    "export_item_path",
    "training_properties",
    "training_source",
    "write_export_item",
]

STAC_VERSION = "1.1.0"
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"  # the version pystac-ext-mlm 1.4 reads
RASTER_SCHEMA = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"  # MLM 1.4 takes raster v1 bands
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
ITEM_SUFFIX = ".stac.json"
PTH_TYPE = "application/octet-stream; framework=pytorch"  # the MLM spec's media type for a torch.save file
ST_TYPE = "application/octet-stream; framework=pytorch; profile=safetensors"


def export_item_path(out: str | Path) -> Path:
    """`X.stac.json` for an export named `X`, `X.pth`, `X.pt` or `X.safetensors`."""
    from geodino.models.checkpoints.files import export_stem

    stem = export_stem(out)
    return stem.with_name(stem.name + ITEM_SUFFIX)


def export_item_id(stem: str, checksums: Sequence[str]) -> str:
    """`STEM-<12 hex of the sha256 of the export files' checksums>`: every run's end export is called `teacher`, so
    the stem alone collides in a catalogue holding several runs. Every file counts, not only the weights: the same
    weights exported with another normalisation record or build config (in the safetensors metadata and the heads
    sidecar) are another model to a user and get another id. The files are byte-reproducible, so re-exporting the
    same export gives the same id (a catalogue server updates the item instead of adding a second one)."""
    digest = hashlib.sha256("\n".join(checksums).encode()).hexdigest()
    return f"{stem}-{digest[:12]}"


def _mlm_name(stem: str) -> str:
    """`geodino STEM` in the characters the MLM schema's name pattern allows (a letter first, a letter or digit
    last)."""
    name = re.sub(r"[^A-Za-z0-9_. -]+", "_", f"geodino {stem}")
    return re.sub(r"[^A-Za-z0-9]+$", "", name) or "geodino export"


def _semver(version: str) -> str:
    """torch's version as the schema's semantic version (`2.6.0a0+git1` -> `2.6.0`)."""
    full = re.fullmatch(r"\d+\.\d+\.\d+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?", version)
    if full:
        return version
    found = re.match(r"\d+\.\d+\.\d+", version)
    return found.group(0) if found else version


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_fields(path: Path) -> dict[str, Any]:
    """`file:size` and `file:checksum` (sha256 as a multihash: 0x12 sha2-256, 0x20 bytes long)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    return {"file:size": path.stat().st_size, "file:checksum": "1220" + h.hexdigest()}


def _architecture(state: Mapping[str, Tensor], config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The build kwargs: the recorded ones over those inferred from the weights' shapes."""
    from geodino.models.checkpoints.infer import infer_config

    try:
        cfg = dict(infer_config(state))
    except Exception:  # a state the inference does not know: the recorded kwargs alone
        cfg = {}
    cfg.update(dict(config or {}))
    if "patch_embed.proj.weight" in state:
        cfg["in_chans"] = int(state["patch_embed.proj.weight"].shape[1])
    return cfg


def _parameters(obj: nn.Module | Mapping[str, Tensor], cfg: Mapping[str, Any]) -> int:
    """Parameters (not buffers such as the RoPE periods): counted on the module, or on the architecture built on the
    meta device (no memory) for a bare state_dict; all its tensors when it cannot be built."""
    if isinstance(obj, nn.Module):
        return sum(p.numel() for p in obj.parameters())
    try:
        from geodino.models import build_model

        kwargs = dict(cfg)
        model = build_model(kwargs.pop("arch", None), device="meta", **kwargs)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # an architecture build_model does not take: count what the file holds
        return sum(v.numel() for v in obj.values() if isinstance(v, Tensor))


def _json_value(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v if v is None or isinstance(v, bool | int | float | str) else str(v)


def _per_band(v: Any, n: int) -> list[float]:
    """One value per band from a number or a list (one value: the same for every band)."""
    vals = [float(x) for x in v] if isinstance(v, Sequence) and not isinstance(v, str) else [float(v)]
    return vals * n if len(vals) == 1 else vals


def _dn_scale(norm: Mapping[str, Any] | None, n: int) -> tuple[list[float], list[float]] | None:
    """Per-band (scale, offset) of the record's DN -> reflectance rule, or None when it records none."""
    from geodino.models.checkpoints.normalization import dn_scale_of

    dn = dn_scale_of(norm)
    return None if dn is None else (_per_band(dn[0], n), _per_band(dn[1], n))


def _one(values: list[float]) -> str:
    """One number when every band has it, else the list."""
    return f"{values[0]:g}" if len(set(values)) == 1 else str(values)


def _bands(norm: Mapping[str, Any] | None, n: int) -> tuple[list[str], list[dict[str, Any]]]:
    """(band names, `raster:bands` of a model asset: the names): the record's, else `band_1` ..."""
    names = [str(b) for b in (norm or {}).get("bands") or []] or [f"band_{i + 1}" for i in range(n)]
    return names, [{"name": b} for b in names]


def _model_input(
    names: list[str], n: int, patch: int | None, norm: Mapping[str, Any] | None, note: str = ""
) -> dict[str, Any]:
    """The one input: bands, shape, and per-band z-scores (`note`: why there are none). MLM applies
    `value_scaling` to the data as a consumer reads it, so with a recorded DN scale the record's reflectance
    mean/std are folded into DN units: (DN * s + o - mean) / std = (DN - (mean - o) / s) / (std / s)."""
    scaling = None
    how = "no input normalisation is recorded: standardise as the data the backbone was trained on" + note
    if norm:
        dn = _dn_scale(norm, n)
        scale, offset = dn if dn is not None else ([1.0] * n, [0.0] * n)
        scaling = [
            {"type": "z-score", "mean": (float(m) - o) / s, "stddev": float(sd) / s}
            for m, sd, s, o in zip(norm["mean"], norm["std"], scale, offset, strict=True)
        ]
        how = "value_scaling standardises the data as stored"
        if dn is not None:
            how += (
                f" (DN: the reflectance statistics {list(norm['mean'])} / {list(norm['std'])} folded with the DN "
                f"scale, reflectance = DN x {_one(scale)} + {_one(offset)}; float reflectance input takes those "
                "statistics directly)"
            )
        if norm.get("origin"):
            how += f"; statistics from {norm['origin']}"
    size = f"any multiple of the patch size {patch}" if patch else "any multiple of the patch size"
    return {
        "name": "image",
        "bands": names,
        "input": {
            "shape": [-1, n, -1, -1],
            "dim_order": ["batch", "channel", "height", "width"],
            "data_type": "float32",
        },
        "description": f"{n} bands; height and width {size} (RoPE positions); {how}",
        "value_scaling": scaling,
        "resize_type": None,
    }


def _model_outputs(dim: int, patch: int | None) -> list[dict[str, Any]]:
    p = f"{patch} x {patch} px" if patch else "one patch"
    return [
        {
            "name": "cls_token",
            "tasks": ["similarity-search"],
            "result": {"shape": [-1, dim], "dim_order": ["batch", "embedding"], "data_type": "float32"},
            "description": "x_norm_clstoken of forward_features: one embedding per image (kNN, linear probes)",
        },
        {
            "name": "patch_tokens",
            "tasks": ["similarity-search"],
            "result": {"shape": [-1, -1, dim], "dim_order": ["batch", "token", "embedding"], "data_type": "float32"},
            "description": f"x_norm_patchtokens: one embedding per {p} patch, row by row (what geodino embed maps)",
        },
    ]


def _assets(pth: Path, st: Path, hp: Path, raster: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The two model artifacts (role `mlm:model`, with their `mlm:artifact_type` and bands) and the heads sidecar,
    hrefs relative to the item (it sits beside them)."""
    roles = ["mlm:model", "mlm:weights", "weights", "data"]
    assets = {
        "model": {
            "href": f"./{pth.name}",
            "type": PTH_TYPE,
            "title": "backbone state_dict, official DINOv3 keys",
            "roles": roles,
            "mlm:artifact_type": "torch.save",
            "raster:bands": raster,
            **_file_fields(pth),
        },
        "model_safetensors": {
            "href": f"./{st.name}",
            "type": ST_TYPE,
            "title": "the same weights as safetensors (build kwargs in its metadata)",
            "roles": roles,
            "mlm:artifact_type": "safetensors.torch.save_file",
            "raster:bands": raster,
            **_file_fields(st),
        },
    }
    if hp.exists():
        assets["heads"] = {
            "href": f"./{hp.name}",
            "type": PTH_TYPE,
            "title": "DINO and iBOT heads, build kwargs and normalisation record (torch.save)",
            "roles": ["weights", "metadata"],
            **_file_fields(hp),
        }
    return assets


def training_source(data: Any) -> str | None:
    """A short `mlm:pretrained_source` from a data config (a dict or `DataConfig`: its sources' types and paths, at
    most three paths each)."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    parts = []
    for src in (data or {}).get("sources") or []:
        if not isinstance(src, Mapping):
            continue
        paths = [str(p) for p in src.get("paths") or []]
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        sensor = f" (sensor {src['sensor']})" if src.get("sensor") else ""
        parts.append(f"{src.get('type') or 'data'} {shown}{sensor}".strip())
    return "; ".join(parts) or None


def training_properties(geo: Mapping[str, Any], which: str = "teacher") -> dict[str, Any]:
    """Item properties from a training checkpoint's `geodino` entry: what it was pretrained on (its data sources,
    and the model it continued from: `init_from`), its step and which network the export is."""
    cfg = geo.get("config")
    if not isinstance(cfg, Mapping):
        cfg = {}
    source = training_source(cfg.get("data"))
    if cfg.get("init_from"):
        source = f"{source}, continued from {cfg['init_from']}" if source else f"continued from {cfg['init_from']}"
    props: dict[str, Any] = {"geodino:network": which}
    props.update(_extent(geo.get("data_extent")))
    if source:
        props["mlm:pretrained_source"] = source
    if geo.get("step") is not None:
        props["geodino:step"] = int(geo["step"])
    return props


def distill_properties(teacher: str, data: Any, extent: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Item properties of a distilled student: its teacher, the data it was distilled on and their extent (see
    `train.data_extent`)."""
    source = training_source(data)
    props = {"mlm:pretrained_source": f"distilled from {teacher}" + (f" on {source}" if source else "")}
    return props | _extent(extent)


def _extent(extent: Any) -> dict[str, Any]:
    """`geometry` and `bbox` from a recorded training extent (`train.data_extent`), else `geodino:extent_note`: why
    the geometry is null (data without a CRS, kinds without a footprint, a failed computation), where recorded."""
    if isinstance(extent, Mapping) and extent.get("geometry") and extent.get("bbox"):
        return {"geometry": dict(extent["geometry"]), "bbox": [float(v) for v in extent["bbox"]]}
    if isinstance(extent, Mapping) and extent.get("note"):
        return {"geodino:extent_note": str(extent["note"])}
    return {}


def export_item(
    paths: Sequence[Path],
    state: nn.Module | Mapping[str, Tensor],
    config: Mapping[str, Any] | None,
    normalization: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The MLM item of the export `paths` (`X.pth`, `X.safetensors`, `X.heads.pth`, as `save_export` returns them);
    `properties` are merged over the item's (e.g. `mlm:pretrained_source`, `start_datetime`/`end_datetime`,
    `geometry` and `bbox` when the training footprint is known)."""
    import geodino

    pth, st, hp = (Path(p) for p in paths)
    weights = state.state_dict() if isinstance(state, nn.Module) else state
    cfg = _architecture(weights, config)
    n, dim = int(cfg.get("in_chans") or 3), int(cfg.get("embed_dim") or 0)
    patch = cfg.get("patch_size")
    stem = pth.name[: -len(pth.suffix)]
    mismatch = ""
    if normalization and len(normalization["mean"]) != n:  # a record that cannot scale this input: say so
        mismatch = f"; the recorded normalisation has {len(normalization['mean'])} bands, the weights take {n}"
        normalization = None
    names, raster = _bands(normalization, n)
    arch = cfg.get("arch") or "custom ViT"
    extra = dict(properties or {})
    geometry, bbox = extra.pop("geometry", None), extra.pop("bbox", None)
    now = _now()
    props: dict[str, Any] = {
        "title": f"{stem}: geodino {arch}/{patch} backbone",
        "description": f"DINOv3 {arch} (patch {patch}, {dim}-dim embeddings, {n} bands) exported by geodino "
        f"{geodino.__version__}: load with geodino.backbones.load_backbone('{pth.name}') or torch.load + strict "
        "load_state_dict into the official DINOv3 model of these build kwargs (mlm:hyperparameters)",
        "datetime": now,
        "created": now,
        "mlm:name": _mlm_name(stem),
        "mlm:architecture": "Vision Transformer",
        "mlm:tasks": ["similarity-search"],
        "mlm:framework": "PyTorch",
        "mlm:framework_version": _semver(torch.__version__),
        "mlm:total_parameters": _parameters(state, cfg),
        "mlm:pretrained": True,
        "mlm:input": [_model_input(names, n, patch, normalization, mismatch)],
        "mlm:output": _model_outputs(dim, patch),
        "mlm:hyperparameters": _json_value(cfg),
    }
    # no mlm:pretrained_source from the record's `origin`: that names where the statistics came from, not always
    # what the weights were trained on (the description carries it as "statistics from ...")
    props.update(_json_value(extra))
    if "start_datetime" in props and "end_datetime" in props and "datetime" not in extra:
        props["datetime"] = None  # a range instead of one instant
    assets = _assets(pth, st, hp, raster)
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [MLM_SCHEMA, RASTER_SCHEMA, FILE_SCHEMA],
        "id": export_item_id(stem, [a["file:checksum"] for a in assets.values()]),
        "geometry": geometry,
        "properties": props,
        "links": [],
        "assets": assets,
    }
    if geometry is not None and bbox is not None:
        item["bbox"] = list(bbox)
    return item


def write_export_item(
    paths: Sequence[Path],
    state: nn.Module | Mapping[str, Tensor],
    config: Mapping[str, Any] | None,
    normalization: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> Path:
    """Write `export_item(...)` as `X.stac.json` next to the export, atomically; return its path."""
    from geodino.io import atomic_path, json_text

    item = export_item(paths, state, config, normalization, properties)
    path = export_item_path(paths[0])
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(item, indent=1) + "\n")
    return path
