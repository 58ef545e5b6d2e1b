"""Backbone checkpoints: safe reading, unwrapping, architecture inference, strict loading, band adaptation, saving.

Every reader uses `torch.load(weights_only=True)` (or safetensors): a checkpoint that needs pickled Python code
is refused, never executed. Accepted inputs, all turned into the official DINOv3 state_dict layout:

- official backbone releases `dinov3_*_pretrain_{lvd1689m,sat493m}-*.pth` (plain state_dict);
- official eval dumps `{"teacher": {"backbone.*", "dino_head.*", "ibot_head.*"}}`;
- geodino training checkpoints (`{"state_dict": {"arch.teacher.backbone.*", ...}, "geodino": {...}}`) and
  exports (`X.pth` / `X.safetensors`, build kwargs in the safetensors metadata or the `X.heads.pth` sidecar);
- `{"model": ...}` / `{"state_dict": ...}` wrappers with any key prefix;
- Hugging Face transformers `DINOv3ViTModel` files or folders (`config.json` + `model.safetensors`) and timm
  `vit_*_patch16_dinov3` (Eva) state_dicts, converted by `convert_hf` / `convert_timm`.

The architecture is inferred from the shapes (`infer_config`), so a file alone is enough to build its model.
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from geodino.errors import CheckpointError, ConfigError
from geodino.models.archs import ARCHS, COMMON, arch_kwargs
from geodino.models.layers.ffn import ffn_hidden_dim

__all__ = [
    "BackboneWeights",
    "adapt_patch_embed",
    "adapt_state_bands",
    "detect_layout",
    "infer_config",
    "load_model",
    "load_weights",
    "read_backbone_weights",
    "read_file",
    "save_backbone",
    "save_pth",
    "save_safetensors",
    "to_official",
]

SAFETENSORS_CONFIG_KEY = "geodino_config"
RGB = ("R", "G", "B")
# Names that mean red, green and blue in band lists (case-insensitive); sensor-specific names (B04, SR_B4, ...)
# are resolved by the caller through the sensor's `rgb_bands` (see geodino.backbones).
_RGB_SYNONYMS = {"r": "R", "red": "R", "g": "G", "green": "G", "b": "B", "blue": "B"}


# ----------------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------------


_FOREIGN_MAGIC = {
    b"II*\x00": "a TIFF raster",
    b"MM\x00*": "a TIFF raster",
    b"II+\x00": "a BigTIFF raster",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89HDF": "an HDF5/NetCDF file",
}


def _foreign_file(path: Path) -> str | None:
    """What `path` is when it is plainly not a weights file (a raster, an image, text); None otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    for magic, what in _FOREIGN_MAGIC.items():
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not head or all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file: {first!r}" if first else "an empty file"
    return None


def _torch_load(path: Path) -> Any:
    """torch.load with weights_only=True; every failure becomes one CheckpointError line naming the file."""
    what = _foreign_file(path)
    if what is not None:
        raise CheckpointError(
            f"{path} is not a checkpoint ({what}); pass a backbone: a .pth/.pt or .safetensors weights file, "
            "a Hugging Face model folder, arch:vit_small or timm:NAME"
        )
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) serialization cannot be memory-mapped
            if "mmap" not in str(exc) and "zip" not in str(exc).lower():
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        glob = next((ln.strip() for ln in text.splitlines() if "Unsupported global" in ln), None)
        if glob is not None:
            raise CheckpointError(
                f"checkpoint {path} needs pickled Python code to load ({glob[:160]}); refused for safety "
                "(weights_only=True): re-save it as a plain state_dict (torch.save(model.state_dict(), ...)) "
                "or as .safetensors"
            ) from exc
        detail = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln or "invalid" in ln), "")
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a torch file ({detail[:120] or 'unreadable pickle'}); "
            "re-download or re-export it"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({first}); re-download or re-export it"
        ) from exc


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError types
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file ({first}); re-download it"
        ) from exc
    return state, meta


def read_file(path: str | Path) -> tuple[Any, dict[str, str]]:
    """The raw object of a checkpoint file (and safetensors metadata), read safely."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found; pass an existing .pth, .safetensors file or HF folder")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass a file, or an HF folder with config.json")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); re-download or re-export it")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix not in (".pth", ".pt", ".ckpt", ".bin") and _looks_like_safetensors(path):
        return _read_safetensors(path)
    return _torch_load(path), {}


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < 100_000_000 and head[8:9] == b"{"


@dataclass
class BackboneWeights:
    """A backbone state_dict in the official layout, with its build kwargs when the file carries them."""

    state: dict[str, Tensor]
    source: Path
    layout: str  # official | hf | timm (the layout the file was in)
    kind: str = "backbone"  # backbone | geodino-ssl | geodino-export | official-eval | wrapped | hf-folder
    config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


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


def _pick_prefix(state: Mapping[str, Any], path: Path, which: str) -> str:
    found = _prefixes(state)
    if not found:
        raise CheckpointError(
            f"checkpoint {path} holds no ViT backbone (no cls_token key among {len(state)} entries); "
            "pass a DINOv3 backbone, an HF DINOv3ViTModel or a timm *_dinov3 file"
        )
    if len(found) == 1:
        return found[0]
    pick = [p for p in found if which in p]
    if len(pick) >= 1:
        # prefer the backbone itself (e.g. "arch.teacher.backbone." over "arch.teacher.")
        return min(pick, key=lambda p: (0 if p.endswith("backbone.") else 1, len(p)))
    raise CheckpointError(
        f"checkpoint {path} holds several backbones ({', '.join(p.rstrip('.') or '<root>' for p in found)}); "
        f"choose one with which=<prefix> (e.g. which=teacher)"
    )


def _strip(state: Mapping[str, Any], prefix: str) -> dict[str, Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, Tensor)}


def read_backbone_weights(path: str | Path, *, which: str = "teacher") -> BackboneWeights:
    """Read any supported file or HF folder and return its backbone in the official layout.

    `which` selects the backbone inside checkpoints holding several (teacher/student, or any key prefix).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        from geodino.models.convert_hf import read_hf_folder

        return read_hf_folder(path)
    obj, meta = read_file(path)
    config: dict[str, Any] | None = None
    kind = "backbone"
    if SAFETENSORS_CONFIG_KEY in meta:
        try:
            config = json.loads(meta[SAFETENSORS_CONFIG_KEY]) or None
        except json.JSONDecodeError:
            config = None
        kind = "geodino-export"
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict; save model.state_dict() instead"
        )
    state: Mapping[str, Any] = obj
    geo = obj.get("geodino") if isinstance(obj.get("geodino"), Mapping) else None
    if geo is not None and isinstance(obj.get("state_dict"), Mapping):
        kind = "geodino-ssl"
        config = dict(geo.get("backbone") or {}) or None
        state = obj["state_dict"]
    elif isinstance(obj.get("teacher"), Mapping) and which == "teacher":
        kind = "official-eval"
        state = obj["teacher"]
    elif isinstance(obj.get("student"), Mapping) and which == "student":
        kind = "official-eval"
        state = obj["student"]
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
    raw = _strip(state, prefix)
    if config is None and kind == "backbone":
        config = _sidecar_config(path)
        if config is not None:
            kind = "geodino-export"
    layout = detect_layout(raw, path)
    weights = BackboneWeights(state=to_official(raw, layout, path), source=path, layout=layout, kind=kind)
    if config:
        weights.config = config
    if prefix:
        weights.notes.append(f"backbone taken from keys under {prefix!r}")
    return weights


def _sidecar_config(path: Path) -> dict[str, Any] | None:
    """Build kwargs from the `X.heads.pth` file that `geodino export` writes next to `X.pth`."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    side = path.with_name(stem + ".heads.pth")
    if not side.is_file():
        return None
    try:
        obj = torch.load(side, map_location="cpu", weights_only=True)
    except Exception:
        return None
    cfg = obj.get("backbone") if isinstance(obj, Mapping) else None
    return dict(cfg) if isinstance(cfg, Mapping) and cfg else None


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
        from geodino.models.convert_hf import hf_to_official

        return hf_to_official(state, num_heads=num_heads, rope_theta=rope_base)
    if layout == "timm":
        from geodino.models.convert_timm import timm_to_official

        return timm_to_official(state, num_heads=num_heads, rope_base=rope_base)
    raise CheckpointError(f"checkpoint {path}: unknown layout {layout!r}; use official, hf or timm")


# ----------------------------------------------------------------------------------------------------------------
# architecture inference
# ----------------------------------------------------------------------------------------------------------------


def infer_config(state: Mapping[str, Tensor], path: str | Path = "<state_dict>") -> dict[str, Any]:
    """Build kwargs of the DinoVisionTransformer that `state` (official layout) belongs to, from its shapes.

    Inferred: embed_dim, depth, heads (from `rope_embed.periods`, else the arch table or 64-dim heads), FFN type
    and hidden size, storage tokens, qkv/proj/FFN biases, masked k-bias, LayerScale, norm type, `cls_norm`,
    `local_cls_norm`, in_chans, patch size and the RoPE periods (base or min/max). Settings that leave no trace
    in the weights (RoPE train-time augmentation, drop path, LayerNorm eps) take the released values.
    """
    try:
        w = state["patch_embed.proj.weight"]
        dim = int(state["cls_token"].shape[-1])
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks {exc.args[0]}; it is not a DINOv3 ViT backbone") from exc
    depth = 0
    while f"blocks.{depth}.norm1.weight" in state:
        depth += 1
    if depth == 0:
        raise CheckpointError(f"checkpoint {path} has no transformer blocks (blocks.0.norm1.weight missing)")
    if w.shape[-1] != w.shape[-2]:
        raise CheckpointError(f"checkpoint {path}: non-square patches {tuple(w.shape[-2:])} are not supported")
    cfg: dict[str, Any] = {k: v for k, v in COMMON.items()}
    cfg.update(embed_dim=dim, depth=depth, patch_size=int(w.shape[-1]), in_chans=int(w.shape[1]))
    cfg["n_storage_tokens"] = int(state["storage_tokens"].shape[1]) if "storage_tokens" in state else 0
    b = "blocks.0."
    if f"{b}mlp.fc1.weight" in state:
        cfg["ffn_layer"] = "mlp"
        hidden = int(state[f"{b}mlp.fc1.weight"].shape[0])
        cfg["ffn_bias"] = f"{b}mlp.fc1.bias" in state
    elif f"{b}mlp.w1.weight" in state:
        cfg["ffn_layer"] = "swiglu"
        hidden = int(state[f"{b}mlp.w1.weight"].shape[0])
        cfg["ffn_bias"] = f"{b}mlp.w1.bias" in state
    else:
        raise CheckpointError(f"checkpoint {path}: blocks.0.mlp has neither fc1 (MLP) nor w1 (SwiGLU) weights")
    cfg["qkv_bias"] = f"{b}attn.qkv.bias" in state
    cfg["mask_k_bias"] = f"{b}attn.qkv.bias_mask" in state if cfg["qkv_bias"] else True
    cfg["proj_bias"] = f"{b}attn.proj.bias" in state
    cfg["layerscale_init"] = 1e-5 if f"{b}ls1.gamma" in state else None
    cfg["norm_layer"] = "layernormbf16" if "norm.bias" in state else "rmsnorm"
    cfg["untie_cls_and_patch_norms"] = "cls_norm.weight" in state
    cfg["untie_global_and_local_cls_norm"] = "local_cls_norm.weight" in state

    heads = None
    periods = state.get("rope_embed.periods")
    if periods is not None and periods.numel() > 0 and dim % (4 * periods.numel()) == 0:
        head_dim = 4 * periods.numel()
        heads = dim // head_dim
        if not periods.is_meta:
            _infer_rope_periods(cfg, periods.float(), head_dim)
    if heads is None:
        table = [a for a in ARCHS.values() if a["embed_dim"] == dim]
        heads = table[0]["num_heads"] if table else max(1, dim // 64)
    cfg["num_heads"] = heads

    # Name the architecture when it is a table entry, and keep the hidden size explicit otherwise.
    cfg["arch"] = None
    for name in ARCHS:
        ref = arch_kwargs(name)
        ref_hidden = ffn_hidden_dim(ref["ffn_layer"], ref["embed_dim"], ref["ffn_ratio"])
        same_ffn = (ref["ffn_layer"] == "mlp") == (cfg["ffn_layer"] == "mlp")
        same_size = (ref["embed_dim"], ref["depth"], ref["num_heads"]) == (dim, depth, heads)
        if same_size and same_ffn and ref_hidden == hidden:
            cfg["arch"] = name
            cfg["ffn_layer"] = ref["ffn_layer"]
            cfg["ffn_ratio"] = ref["ffn_ratio"]
            break
    if cfg["arch"] is None:
        cfg["ffn_ratio"] = hidden / dim
    cfg["ffn_hidden_dim"] = hidden
    return cfg


def _infer_rope_periods(cfg: dict[str, Any], periods: Tensor, head_dim: int) -> None:
    """Set pos_embed_rope_base, or min/max periods, so that the rebuilt buffer reproduces `periods`."""
    n = periods.numel()
    if n == 1:
        return
    base = float(periods[1]) ** (head_dim / 4)
    expect = base ** (2 * torch.arange(n, dtype=torch.float64) / (head_dim // 2))
    # bf16-rounded buffers (as in the released files) still match within bf16 precision
    if math.isfinite(base) and torch.allclose(expect.float(), periods, rtol=1e-2):
        for nice in (100.0, 10000.0, 1000.0, 10.0):
            if abs(base - nice) / nice < 0.05:
                base = nice
                break
        cfg["pos_embed_rope_base"] = base
        cfg["pos_embed_rope_min_period"] = None
        cfg["pos_embed_rope_max_period"] = None
    else:
        cfg["pos_embed_rope_base"] = None
        cfg["pos_embed_rope_min_period"] = float(periods[0])
        cfg["pos_embed_rope_max_period"] = float(periods[-1])


# ----------------------------------------------------------------------------------------------------------------
# strict loading
# ----------------------------------------------------------------------------------------------------------------


def _shape(t: Tensor) -> str:
    return "[" + ",".join(str(s) for s in t.shape) + "]"


def check_fits(model: nn.Module, state: Mapping[str, Tensor], source: str | Path) -> None:
    """Raise one CheckpointError line naming the mismatching keys and shapes (and suggesting band adaptation)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, state[k], v) for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if shapes:
        shown = ", ".join(f"{k} {_shape(a)} in the file vs {_shape(b)} in the model" for k, a, b in shapes[:3])
        parts.append(f"{len(shapes)} shape mismatch(es): {shown}" + (" ..." if len(shapes) > 3 else ""))
    if missing:
        parts.append(f"{len(missing)} missing key(s): {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
    if unexpected:
        parts.append(
            f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:3])}"
            + (" ..." if len(unexpected) > 3 else "")
        )
    hint = "build the architecture of the file (geodino info FILE shows it) or choose another checkpoint"
    if shapes and not missing and not unexpected and all(k == "patch_embed.proj.weight" for k, _, _ in shapes):
        _, a, b = shapes[0]
        hint = (
            f"the file has {a.shape[1]} input bands and the model {b.shape[1]}: adapt the patch embedding to your "
            "bands (load_backbone(spec, bands=[names]) or spec '?bands=B02,B03,...', "
            "geodino.models.checkpoints.adapt_patch_embed)"
        )
    raise CheckpointError(f"checkpoint {source} does not fit the model: {'; '.join(parts)}; {hint}")


def load_weights(model: nn.Module, state: Mapping[str, Tensor], source: str | Path = "<state_dict>") -> nn.Module:
    """Strict `load_state_dict` with a one-line error; a meta-device model gets the tensors assigned in place
    (cast to the model's floating dtype), so a large model is never allocated twice."""
    check_fits(model, state, source)
    own = model.state_dict()
    if any(t.is_meta for t in own.values()):
        fixed = {k: (v.to(own[k].dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
        model.load_state_dict(fixed, strict=True, assign=True)
    else:
        model.load_state_dict(dict(state), strict=True)
    return model


# ----------------------------------------------------------------------------------------------------------------
# RGB -> N-band patch embedding
# ----------------------------------------------------------------------------------------------------------------


def _canon(name: str) -> str:
    return _RGB_SYNONYMS.get(name.strip().lower(), name.strip().upper())


def match_bands(src_bands: Sequence[str], dst_bands: Sequence[str]) -> dict[int, int]:
    """dst index -> src index for bands with the same name (case-insensitive; red/green/blue = R/G/B)."""
    src = {_canon(b): i for i, b in enumerate(src_bands)}
    return {j: src[_canon(b)] for j, b in enumerate(dst_bands) if _canon(b) in src}


def adapt_patch_embed(
    weight: Tensor,
    src_bands: Sequence[str],
    dst_bands: Sequence[str],
    *,
    fill: str = "mean",
) -> Tensor:
    """Patch-embedding kernel [D, C_src, p, p] -> [D, C_dst, p, p] for another band set, by band names.

    Rule (documented in docs/backbone.md):
    - a destination band whose name matches a source band (e.g. R/G/B, or red/green/blue) copies its kernel;
    - every other band gets the mean source kernel (`fill="mean"`) or zeros (`fill="zeros"`);
    - the result is scaled so activations keep their magnitude: by C_src / C_dst for `mean` (a uniform input,
      all bands equal, then gives exactly the source model's response when all source bands are matched) and
      by C_src / k for `zeros` with k matched bands (k = C_src: the source model, unchanged, on those bands).
    The bias is unchanged.
    """
    if fill not in ("mean", "zeros"):
        raise ConfigError(f"band fill {fill!r} must be 'mean' or 'zeros'")
    c_src = weight.shape[1]
    if len(src_bands) != c_src:
        raise ConfigError(f"{len(src_bands)} source band names given for a patch embedding with {c_src} bands")
    if len(dst_bands) == 0:
        raise ConfigError("no destination bands given for the band adaptation")
    matches = match_bands(src_bands, dst_bands)
    if fill == "zeros" and not matches:
        raise ConfigError(
            f"none of the bands {list(dst_bands)} matches the checkpoint's bands {list(src_bands)}; "
            "use fill='mean' or name the bands that correspond (e.g. R, G, B)"
        )
    mean = weight.mean(dim=1)
    out = weight.new_zeros(weight.shape[0], len(dst_bands), *weight.shape[2:])
    for j in range(len(dst_bands)):
        if j in matches:
            out[:, j] = weight[:, matches[j]]
        elif fill == "mean":
            out[:, j] = mean
    scale = c_src / len(dst_bands) if fill == "mean" else c_src / len(matches)
    return out * scale


def adapt_state_bands(
    state: Mapping[str, Tensor],
    dst_bands: Sequence[str],
    *,
    src_bands: Sequence[str] | None = None,
    fill: str = "mean",
) -> dict[str, Tensor]:
    """A copy of `state` whose `patch_embed.proj.weight` is adapted to `dst_bands` (see `adapt_patch_embed`).

    `src_bands` defaults to R, G, B for a 3-band checkpoint; other band counts need their names.
    """
    w = state["patch_embed.proj.weight"]
    if src_bands is None:
        if w.shape[1] != 3:
            raise ConfigError(
                f"the checkpoint has {w.shape[1]} input bands; name them (src_bands=[...]) to adapt to "
                f"{list(dst_bands)}"
            )
        src_bands = RGB
    out = dict(state)
    out["patch_embed.proj.weight"] = adapt_patch_embed(w.float(), src_bands, dst_bands, fill=fill).to(w.dtype)
    return out


# ----------------------------------------------------------------------------------------------------------------
# building a model from a file
# ----------------------------------------------------------------------------------------------------------------


def build_from_state(
    state: Mapping[str, Tensor],
    config: Mapping[str, Any] | None = None,
    *,
    source: str | Path = "<state_dict>",
    device: str | torch.device = "cpu",
    **overrides: Any,
):
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
    load_weights(model, state, source)
    if device is not None and str(device) != "cpu":
        model = model.to(device)
    model.config["arch"] = arch
    return model


def load_model(
    path: str | Path,
    *,
    bands: Sequence[str] | None = None,
    src_bands: Sequence[str] | None = None,
    fill: str = "mean",
    which: str = "teacher",
    device: str | torch.device = "cpu",
    **overrides: Any,
):
    """A DinoVisionTransformer from any supported file or HF folder, architecture inferred.

    With `bands` (names), the patch embedding is adapted from the file's bands (`src_bands`, default R, G, B
    for 3-band files) when they differ; see `adapt_patch_embed`.
    """
    weights = read_backbone_weights(path, which=which)
    state = weights.state
    if bands is not None:
        c = int(state["patch_embed.proj.weight"].shape[1])
        src = list(src_bands) if src_bands is not None else (list(RGB) if c == 3 else None)
        if src is None and len(bands) != c:
            raise CheckpointError(
                f"checkpoint {weights.source} has {c} input bands and {len(bands)} were requested; name the "
                "checkpoint's bands (src_bands=[...]) to adapt its patch embedding"
            )
        if src is not None and [_canon(b) for b in src] != [_canon(b) for b in bands]:
            state = adapt_state_bands(state, bands, src_bands=src, fill=fill)
    return build_from_state(state, weights.config, source=weights.source, device=device, **overrides)


# ----------------------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------------------


def _state_of(obj: nn.Module | Mapping[str, Tensor]) -> dict[str, Tensor]:
    state = obj.state_dict() if isinstance(obj, nn.Module) else dict(obj)
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def _config_of(obj: Any, config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if config is not None:
        return dict(config)
    cfg = getattr(obj, "config", None)
    return dict(cfg) if isinstance(cfg, Mapping) else None


def save_pth(
    obj: nn.Module | Mapping[str, Tensor], path: str | Path, *, config: Mapping[str, Any] | None = None
) -> Path:
    """Write a plain state_dict (official layout) atomically; loadable with weights_only=True and strict=True
    by the official code. The build kwargs are not stored in the .pth (it stays a pure official file)."""
    from geodino.io import atomic_path

    path = Path(path).expanduser()
    with atomic_path(path) as tmp:
        torch.save(_state_of(obj), tmp)
    return path


def save_safetensors(
    obj: nn.Module | Mapping[str, Tensor], path: str | Path, *, config: Mapping[str, Any] | None = None
) -> Path:
    """Write a state_dict as .safetensors atomically; build kwargs go into the metadata (`geodino_config`)."""
    from safetensors.torch import save_file

    from geodino.io import atomic_path

    path = Path(path).expanduser()
    state = {k: v.clone() if v.data_ptr() in _shared(obj) else v for k, v in _state_of(obj).items()}
    meta = {"format": "pt"}
    cfg = _config_of(obj, config)
    if cfg:
        meta[SAFETENSORS_CONFIG_KEY] = json.dumps(cfg)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def _shared(obj: Any) -> set[int]:
    """Storage pointers used by more than one tensor (safetensors refuses shared tensors)."""
    state = obj.state_dict() if isinstance(obj, nn.Module) else obj
    seen: dict[int, int] = {}
    for v in state.values():
        if isinstance(v, Tensor) and not v.is_meta:
            seen[v.data_ptr()] = seen.get(v.data_ptr(), 0) + 1
    return {p for p, n in seen.items() if n > 1}


def save_backbone(
    obj: nn.Module | Mapping[str, Tensor],
    path: str | Path,
    *,
    layout: str = "official",
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Save a backbone in `layout` (official | hf | timm): `.safetensors` or `.pth` by suffix; `hf` writes a
    folder with config.json and model.safetensors (loadable by `DINOv3ViTModel.from_pretrained`)."""
    cfg = _config_of(obj, config)
    state = _state_of(obj)
    path = Path(path).expanduser()
    if layout == "official":
        pass
    elif layout == "hf":
        from geodino.models.convert_hf import write_hf_folder

        return write_hf_folder(state, path, config=cfg)
    elif layout == "timm":
        from geodino.models.convert_timm import official_to_timm

        state = official_to_timm(state)
    else:
        raise ConfigError(f"unknown checkpoint layout {layout!r}; use official, hf or timm")
    if path.suffix == ".safetensors":
        return save_safetensors(state, path, config=cfg if layout == "official" else None)
    return save_pth(state, path)


# ----------------------------------------------------------------------------------------------------------------
# conversion between layouts (the `geodino convert` command)
# ----------------------------------------------------------------------------------------------------------------

LAYOUTS = ("official", "hf", "timm")


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    src_layout: str = "auto",
    dst_layout: str = "official",
    bands: Sequence[str] | None = None,
    src_bands: Sequence[str] | None = None,
    fill: str | None = "mean",
    which: str = "teacher",
    overwrite: bool = False,
    expect_arch: str | None = None,
    expect_bands: int | None = None,
    sensor: str | None = None,
) -> Path:
    """Convert a backbone file or HF folder between the official, HF and timm layouts (optionally adapting its
    bands); `.safetensors` or `.pth` by the suffix of `dst`, a folder for `hf`. Returns the written path.

    `expect_arch` / `expect_bands` make the conversion fail (one line naming the mismatching keys and shapes)
    unless the weights fit that architecture and band count.

    Band names resolve through the sensor registry (`sensor`, or the built-in sensors that know every name:
    Sentinel-2 B04/B03/B02 are red/green/blue). `fill=None` refuses names that match no band of the file
    instead of giving them the `mean` kernel."""
    from geodino.io import check_writable

    for name, value in (("--from", src_layout), ("--to", dst_layout)):
        if value not in (*LAYOUTS, "auto") or (name == "--to" and value == "auto"):
            raise ConfigError(f"{name} {value!r} is not a layout; use one of {', '.join(LAYOUTS)}")
    suffix = Path(dst).suffix.lower()
    if dst_layout != "hf" and suffix not in (".pth", ".pt", ".safetensors"):
        raise ConfigError(
            f"output {dst} must end in .safetensors, .pth or .pt (the format is chosen by the suffix); "
            "or pass --to hf to write a Hugging Face folder"
        )
    weights = read_backbone_weights(src, which=which)
    if src_layout != "auto" and src_layout != weights.layout:
        raise CheckpointError(
            f"checkpoint {src} is in the {weights.layout} layout, not {src_layout}; pass --from {weights.layout} "
            "(or leave --from out to detect it)"
        )
    state = weights.state
    if bands is not None:
        c = int(state["patch_embed.proj.weight"].shape[1])
        src_names = list(src_bands) if src_bands else (list(RGB) if c == 3 else None)
        if src_names is None:
            raise ConfigError(f"checkpoint {src} has {c} unnamed bands; pass --src-bands to adapt it to {list(bands)}")
        from geodino.data.sensors import rgb_names

        resolved = rgb_names(bands, sensor)
        src_names = rgb_names(src_names, sensor) if src_bands else src_names
        matched = match_bands(src_names, resolved)
        unmatched = [b for j, b in enumerate(bands) if j not in matched]
        if unmatched and fill is None:
            hint = "" if sensor or matched else "; or --sensor NAME so the names resolve (e.g. sentinel2_l2a)"
            raise ConfigError(
                f"band(s) {', '.join(unmatched)} of --bands match no band of checkpoint {src} "
                f"({', '.join(src_names)}); pass --fill mean (the mean kernel) or --fill zeros for them{hint}"
            )
        if [_canon(b) for b in src_names] != [_canon(b) for b in resolved]:
            state = adapt_state_bands(state, resolved, src_bands=src_names, fill=fill or "mean")
    config = dict(infer_config(state, src))
    if weights.config:
        config.update({k: v for k, v in weights.config.items() if k in config and k != "in_chans"})
    if expect_arch is not None or expect_bands is not None:
        check_architecture(state, expect_arch, expect_bands, config, src)
    dst = check_writable(Path(dst).expanduser(), overwrite=overwrite)
    return save_backbone(state, dst, layout=dst_layout, config=config)


def check_architecture(
    state: Mapping[str, Tensor],
    arch: str | None,
    bands: int | None,
    inferred: Mapping[str, Any] | None = None,
    source: str | Path = "<state_dict>",
) -> None:
    """Fail unless `state` fits `arch` (default: its own inferred architecture) with `bands` input bands
    (default: its own); untied norms follow the file."""
    from geodino.models import build_model

    cfg = dict(inferred or infer_config(state, source))
    if bands is not None:
        cfg["in_chans"] = int(bands)
    if arch is None:
        name = cfg.pop("arch", None)
        model = build_model(name, device="meta", **cfg)
    else:
        flags = {k: cfg[k] for k in ("untie_cls_and_patch_norms", "untie_global_and_local_cls_norm")}
        model = build_model(arch, in_chans=cfg["in_chans"], patch_size=int(cfg["patch_size"]), device="meta", **flags)
    check_fits(model, state, source)
