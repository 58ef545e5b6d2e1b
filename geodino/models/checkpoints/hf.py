"""Conversion between the official DINOv3 layout and Hugging Face transformers `DINOv3ViTModel`.

HF splits the fused qkv into `q_proj`/`k_proj`/`v_proj` (no key bias: the official key bias is masked to zero),
names the storage tokens `embeddings.register_tokens`, LayerScale `layer_scale{1,2}.lambda1` and the FFN
`mlp.{up,down,gate}_proj` (SwiGLU: gate = w1, up = w2, down = w3; MLP: up = fc1, down = fc2). The RoPE periods
are not stored (HF recomputes `inv_freq = 1 / periods` from `rope_theta`). Files on the hub use `layer.{i}`;
transformers >= 5 keeps them under `model.layer.{i}` and renames on load: both are read, `layer.{i}` is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from geodino.errors import CheckpointError
from geodino.models.checkpoints.files import BackboneWeights, read_file
from geodino.models.checkpoints.infer import default_heads, infer_config, rope_periods
from geodino.models.checkpoints.keymap import (
    LOCAL_NORM_KEY,
    check_portable,
    count_blocks,
    drop_unit_scales,
    invert,
    key_bias_mask,
    masked_qkv_bias,
    refuse_untied_cls_norm,
    rename,
    warn_local_norm_dropped,
)

HF_CONFIG_FILE = "config.json"
HF_PREPROCESSOR_FILE = "preprocessor_config.json"
HF_EXPORT_FILES = (HF_CONFIG_FILE, "model.safetensors", HF_PREPROCESSOR_FILE)  # what `write_hf_folder` writes
# official -> HF names inside a block (SwiGLU: gate = w1, up = w2, down = w3; MLP: up = fc1, down = fc2)
_NORMS = {"norm1": "norm1", "norm2": "norm2"}
_SWIGLU = {"mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.up_proj", "mlp.w3": "mlp.down_proj"}
_MLP = {"mlp.fc1": "mlp.up_proj", "mlp.fc2": "mlp.down_proj"}
_GLOBAL = {"embeddings.patch_embeddings": "patch_embed.proj", "norm": "norm"}  # HF -> official, outside blocks
_PROJ = {"attn.proj": "attention.o_proj"}
_SCALES = {"ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1"}


def _layer_prefix(state: Mapping[str, Tensor]) -> str:
    return "model.layer." if any(k.startswith("model.layer.") for k in state) else "layer."


def hf_to_official(
    state: Mapping[str, Tensor], *, num_heads: int | None = None, rope_theta: float = 100.0
) -> dict[str, Tensor]:
    """HF `DINOv3ViTModel` state_dict -> official layout (heads default to the arch table for the width)."""
    s = dict(state)
    dim = int(s["embeddings.cls_token"].shape[-1])
    heads = num_heads or default_heads(dim)
    out: dict[str, Tensor] = {
        "cls_token": s["embeddings.cls_token"],
        "mask_token": s.get("embeddings.mask_token", torch.zeros(1, dim)).reshape(1, dim),
        "rope_embed.periods": rope_periods(dim // heads, rope_theta),
    }
    rename(out, s, "", "", _GLOBAL)
    reg = s.get("embeddings.register_tokens")
    if reg is not None and reg.numel() > 0:
        out["storage_tokens"] = reg
    lp = _layer_prefix(s)
    n = count_blocks(s, lp)
    for i in range(n):
        a, b = f"{lp}{i}.", f"blocks.{i}."
        rename(out, s, a, b, _NORMS)
        q, k, v = (s[f"{a}attention.{x}_proj.weight"] for x in "qkv")
        out[f"{b}attn.qkv.weight"] = torch.cat([q, k, v])
        qb, kb, vb = (s.get(f"{a}attention.{x}_proj.bias") for x in "qkv")
        if qb is not None or vb is not None or kb is not None:
            zeros = q.new_zeros(dim)
            out[f"{b}attn.qkv.bias"] = torch.cat([t if t is not None else zeros for t in (qb, kb, vb)])
            if kb is None or not kb.any():  # the official masked key bias
                out[f"{b}attn.qkv.bias_mask"] = key_bias_mask(dim, out[f"{b}attn.qkv.bias"].dtype)
        ffn = _SWIGLU if f"{a}mlp.gate_proj.weight" in s else _MLP
        rename(out, s, a, b, invert({**_PROJ, **ffn}))
        rename(out, s, a, b, invert(_SCALES), params=("",))
    if n == 0:
        raise CheckpointError("HF state_dict has no layers (layer.0.norm1.weight missing)")
    return out


def official_to_hf(state: Mapping[str, Tensor], *, layer_prefix: str = "layer.") -> dict[str, Tensor]:
    """Official layout -> HF `DINOv3ViTModel` state_dict. `local_cls_norm` (training only) is dropped
    (`write_hf_folder` warns and records it); an untied `cls_norm` cannot be expressed in HF and is refused."""
    s = dict(state)
    refuse_untied_cls_norm(s, "HF DINOv3ViTModel")
    dim = int(s["cls_token"].shape[-1])
    out: dict[str, Tensor] = {
        "embeddings.cls_token": s["cls_token"],
        "embeddings.mask_token": s["mask_token"].reshape(1, 1, dim),
        "embeddings.register_tokens": s.get("storage_tokens", s["cls_token"].new_zeros(1, 0, dim)),
    }
    rename(out, s, "", "", invert(_GLOBAL))
    for i in range(count_blocks(s)):
        a, b = f"blocks.{i}.", f"{layer_prefix}{i}."
        rename(out, s, a, b, _NORMS)
        q, k, v = s[f"{a}attn.qkv.weight"].chunk(3)
        out[f"{b}attention.q_proj.weight"] = q
        out[f"{b}attention.k_proj.weight"] = k
        out[f"{b}attention.v_proj.weight"] = v
        bias = masked_qkv_bias(s, a)
        if bias is not None:
            qb, kb, vb = bias.chunk(3)
            out[f"{b}attention.q_proj.bias"] = qb
            out[f"{b}attention.v_proj.bias"] = vb
            if kb.any():
                out[f"{b}attention.k_proj.bias"] = kb
        out[f"{b}layer_scale1.lambda1"] = s.get(f"{a}ls1.gamma", torch.ones(dim))
        out[f"{b}layer_scale2.lambda1"] = s.get(f"{a}ls2.gamma", torch.ones(dim))
        rename(out, s, a, b, {**_PROJ, **(_SWIGLU if f"{a}mlp.w1.weight" in s else _MLP)})
    return out


def hf_config_from_official(config: Mapping[str, Any], state: Mapping[str, Tensor]) -> dict[str, Any]:
    """`config.json` content of the HF `DINOv3ViTModel` equivalent to a geodino/official backbone."""
    check_portable(config, "HF DINOv3ViTModel", "rope_theta")
    swiglu = str(config["ffn_layer"]).startswith("swiglu")
    bias = masked_qkv_bias(state, "blocks.0.")
    k_bias = bias is not None and bool(bias.chunk(3)[1].any())
    return {
        "architectures": ["DINOv3ViTModel"],
        "model_type": "dinov3_vit",
        "patch_size": int(config["patch_size"]),
        "hidden_size": int(config["embed_dim"]),
        "intermediate_size": int(config["ffn_hidden_dim"]),
        "num_hidden_layers": int(config["depth"]),
        "num_attention_heads": int(config["num_heads"]),
        "hidden_act": "silu" if swiglu else "gelu",
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-6 if config.get("norm_layer") == "layernorm" else 1e-5,
        "rope_theta": float(config["pos_embed_rope_base"]),
        "image_size": 224,
        "num_channels": int(config["in_chans"]),
        "query_bias": bias is not None,
        "key_bias": k_bias,
        "value_bias": bias is not None,
        "proj_bias": bool(config.get("proj_bias", True)),
        "mlp_bias": bool(config.get("ffn_bias", True)),
        "layerscale_value": float(config.get("layerscale_init") or 1.0),
        "drop_path_rate": 0.0,
        "use_gated_mlp": swiglu,
        "num_register_tokens": int(config.get("n_storage_tokens", 0)),
        "pos_embed_shift": config.get("pos_embed_rope_shift_coords"),
        "pos_embed_jitter": config.get("pos_embed_rope_jitter_coords"),
        "pos_embed_rescale": config.get("pos_embed_rope_rescale_coords"),
    }


def geodino_config_from_hf(hf: Mapping[str, Any]) -> dict[str, Any]:
    """Build kwargs of the geodino backbone equivalent to an HF `DINOv3ViTConfig` dict."""
    gated = bool(hf.get("use_gated_mlp", False))
    act = hf.get("hidden_act", "silu" if gated else "gelu")
    if (gated and act != "silu") or (not gated and act != "gelu"):
        raise CheckpointError(
            f"HF config hidden_act={act!r} with use_gated_mlp={gated} has no DINOv3 equivalent (SwiGLU uses silu, "
            "the MLP exact gelu)"
        )
    patch = hf.get("patch_size", 16)
    patch = int(patch[0] if isinstance(patch, list | tuple) else patch)
    dim = int(hf.get("hidden_size", 384))
    eps = float(hf.get("layer_norm_eps", 1e-5))
    return {
        "patch_size": patch,
        "in_chans": int(hf.get("num_channels", 3)),
        "embed_dim": dim,
        "depth": int(hf.get("num_hidden_layers", 12)),
        "num_heads": int(hf.get("num_attention_heads", 6)),
        "ffn_layer": "swiglu" if gated else "mlp",
        "ffn_hidden_dim": int(hf.get("intermediate_size", 4 * dim)),
        "ffn_ratio": int(hf.get("intermediate_size", 4 * dim)) / dim,
        "qkv_bias": bool(hf.get("query_bias", True) or hf.get("value_bias", True) or hf.get("key_bias", False)),
        "mask_k_bias": not bool(hf.get("key_bias", False)),
        "proj_bias": bool(hf.get("proj_bias", True)),
        "ffn_bias": bool(hf.get("mlp_bias", True)),
        "layerscale_init": float(hf.get("layerscale_value", 1e-5)),
        "norm_layer": "layernorm" if abs(eps - 1e-6) < 1e-9 else "layernormbf16",
        "n_storage_tokens": int(hf.get("num_register_tokens", 0)),
        "pos_embed_rope_base": float(hf.get("rope_theta", 100.0)),
        "pos_embed_rope_shift_coords": hf.get("pos_embed_shift"),
        "pos_embed_rope_jitter_coords": hf.get("pos_embed_jitter"),
        "pos_embed_rope_rescale_coords": hf.get("pos_embed_rescale", 2.0),
    }


def read_hf_folder(path: str | Path):
    """An HF model folder (config.json + model.safetensors / pytorch_model.bin, sharded or not) as
    `BackboneWeights` in the official layout."""
    path = Path(path)
    cfg_file = path / HF_CONFIG_FILE
    if not cfg_file.is_file():
        from geodino.models.checkpoints.folders import not_a_model_folder

        raise CheckpointError(not_a_model_folder(path))
    try:
        hf = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_file} is not valid JSON ({exc}); re-download the model folder") from exc
    if hf.get("model_type") != "dinov3_vit":
        raise CheckpointError(
            f"{cfg_file} describes model_type={hf.get('model_type')!r}, not 'dinov3_vit'; pass a DINOv3 ViT folder"
        )
    files: list[Path] = []
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            shards = sorted(set(_weight_map(path / index).values()))
            files = [path / s for s in shards]
            break
    if not files:
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                files = [path / name]
                break
    if not files:
        raise CheckpointError(f"checkpoint folder {path} has no model.safetensors or pytorch_model.bin")
    state: dict[str, Tensor] = {}
    for f in files:
        obj, _ = read_file(f)
        state.update({k: v for k, v in obj.items() if isinstance(v, Tensor)})
    # HF backbone wrappers may prefix the keys (e.g. "dinov3." / "backbone.")
    anchor = [k[: -len("embeddings.cls_token")] for k in state if k.endswith("embeddings.cls_token")]
    if not anchor:
        raise CheckpointError(f"checkpoint folder {path}: no embeddings.cls_token among the weights")
    prefix = min(anchor, key=len)
    state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    config = geodino_config_from_hf(hf)
    official = hf_to_official(state, num_heads=config["num_heads"], rope_theta=config["pos_embed_rope_base"])
    # gammas of ones under layerscale_value 1.0: what official_to_hf writes for a backbone without LayerScale (HF
    # always has it); dropped, as the timm reader does, so the round trip gives back the official key list
    if float(hf.get("layerscale_value", 1e-5)) == 1.0 and drop_unit_scales(official, config["depth"]):
        config["layerscale_init"] = None
    weights = BackboneWeights(state=official, source=path, layout="hf", kind="hf-folder", config=config)
    weights.local_cls_norm = bool(hf[LOCAL_NORM_KEY]) if LOCAL_NORM_KEY in hf else None
    weights.normalization = read_hf_normalization(path)
    if weights.normalization is not None:
        weights.normalization_from = f"{path.name}/{HF_PREPROCESSOR_FILE}"
    return weights


def _weight_map(index: Path) -> dict[str, str]:
    """The `weight_map` (tensor name -> shard file) of a sharded folder's index JSON; one line when it has none."""
    try:
        found = json.loads(index.read_text()).get("weight_map")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        found = None
    if not isinstance(found, dict) or not found:
        raise CheckpointError(f"{index} has no readable weight_map naming the shards; re-download the model folder")
    return found


def hf_preprocessor_config(
    normalization: Mapping[str, Any] | None, patch_size: int, in_chans: int = 3
) -> dict[str, Any]:
    """`preprocessor_config.json` for `AutoImageProcessor` (DINOv3ViTImageProcessorFast): rescale by the DN scale,
    then standardise with the recorded mean/std; no resizing (any size that is a multiple of the patch works).
    A per-band scale or an offset is folded into mean/std (HF rescales by one factor, here 1). Without a record the
    processor gets ImageNet's statistics for 3 bands (as the RGB releases do) and passes other band counts through
    unchanged (mean 0 / std 1, as `load_backbone` uses such a file), and `geodino_normalization: null` says that
    nothing was recorded."""
    from geodino.models.checkpoints.normalization import NORMALIZATION_KEY, dn_scale_of, folded_mean_std

    cfg: dict[str, Any] = {
        # the name transformers 4.56 (the [hf] bound: its only DINOv3 processor) and 5.x (an alias) both resolve
        "image_processor_type": "DINOv3ViTImageProcessorFast",
        "do_resize": False,
        "size": {"height": 224, "width": 224},
        "resample": 2,
        "do_center_crop": False,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "patch_size": int(patch_size),
        NORMALIZATION_KEY: None,
    }
    # the rescale stays on with factor 1 where there is no scale: it is what turns integer DN (uint16 rasters) into
    # floats, which the processor's normalisation and the model require
    if not normalization and in_chans != 3:  # as geodino uses such a file: mean 0 / std 1 on the input as given
        cfg.update(rescale_factor=1.0, do_normalize=False, image_mean=[0.0] * in_chans, image_std=[1.0] * in_chans)
    if normalization:
        scale, offset = normalization.get("scale", 1.0), normalization.get("offset", 0.0)
        if dn_scale_of(normalization) is None:
            # a bare mean/std (a foreign timm pretrained_cfg: scale 1, no sensor) names no DN scale; its statistics
            # are for pixels / 255, timm's and the processor's convention (rescale 1 standardised uint8 DN unscaled)
            cfg.update(image_mean=list(normalization["mean"]), image_std=list(normalization["std"]))
        elif isinstance(scale, int | float) and offset == 0.0:
            cfg.update(rescale_factor=float(scale), image_mean=list(normalization["mean"]))
            cfg["image_std"] = list(normalization["std"])
        else:
            mean, std = folded_mean_std(normalization)
            cfg.update(rescale_factor=1.0, image_mean=mean, image_std=std)
        cfg[NORMALIZATION_KEY] = dict(normalization)
    return cfg


def read_hf_normalization(path: Path) -> dict[str, Any] | None:
    """The normalisation record of an HF folder's preprocessor_config.json (geodino's own record, else the
    processor's rescale factor and mean/std); None when the folder has none."""
    from geodino.models.checkpoints.normalization import NORMALIZATION_KEY, PROCESSOR_ORIGIN, check_normalization

    f = path / HF_PREPROCESSOR_FILE
    if not f.is_file():
        return None
    try:
        pp = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{f} is not valid JSON ({exc}); re-export or re-download the model folder") from exc
    if NORMALIZATION_KEY in pp:  # written by geodino: null when nothing was recorded
        return check_normalization(pp[NORMALIZATION_KEY], str(f))
    scale = float(pp.get("rescale_factor", 1 / 255)) if pp.get("do_rescale", True) else 1.0
    n = _num_channels(path)
    if pp.get("do_normalize", True) is False:
        # the processor only rescales: its image_mean/std (often ImageNet's, left at their defaults) are not applied,
        # and applying them here gave geodino other inputs than the processor gives transformers
        if not n:
            return None
        rec = {
            "mean": [0.0] * n,
            "std": [1.0] * n,
            "scale": scale,
            "origin": f"{PROCESSOR_ORIGIN} (do_normalize false)",
        }
        return check_normalization(rec, str(f))
    mean, std = _per_band(pp.get("image_mean"), n), _per_band(pp.get("image_std"), n)
    if not (mean and std):
        return None
    rec = {"mean": mean, "std": std, "scale": scale, "origin": PROCESSOR_ORIGIN}  # its rescale is the DN step
    return check_normalization(rec, str(f))


def _per_band(value: Any, n: int) -> Any:
    """A processor's image_mean/std as a list: transformers also takes one number for every channel (image_mean:
    0.5), which the record (one value per band) refused, so such a folder did not load; other values unchanged."""
    if isinstance(value, int | float) and not isinstance(value, bool) and n:
        return [float(value)] * n
    return value


def _num_channels(path: Path) -> int:
    """`num_channels` of the folder's config.json (0 when unreadable)."""
    try:
        return int(json.loads((path / HF_CONFIG_FILE).read_text()).get("num_channels", 3))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _is_hf_export(path: Path) -> bool:
    """True when `path/config.json` describes a DINOv3 ViT (an earlier HF export, which --overwrite may replace)."""
    try:
        return json.loads((path / HF_CONFIG_FILE).read_text()).get("model_type") == "dinov3_vit"
    except (OSError, ValueError, AttributeError):
        return False


def check_hf_output(path: str | Path) -> None:
    """Refuse (one line) an HF output folder that exists and is neither empty nor an earlier HF export holding only
    its files: --overwrite must never replace a folder of other content."""
    from geodino.io import check_replaceable_folder

    check_replaceable_folder(Path(path), HF_EXPORT_FILES, "HF export", _is_hf_export)


def write_hf_folder(
    state: Mapping[str, Tensor],
    path: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    normalization: Mapping[str, Any] | None = None,
) -> Path:
    """Write an HF `DINOv3ViTModel` folder (config.json, model.safetensors and preprocessor_config.json, the
    latter with the recorded normalisation) atomically."""
    from safetensors.torch import save_file

    from geodino.io import atomic_path, set_default_mode

    cfg = dict(infer_config(state, path))
    if config:
        cfg.update({k: v for k, v in config.items() if k in cfg and k not in ("ffn_hidden_dim", "depth", "embed_dim")})
    hf_cfg = hf_config_from_official(cfg, state)
    if warn_local_norm_dropped(state, "HF DINOv3ViTModel"):
        hf_cfg[LOCAL_NORM_KEY] = True  # an extra config attribute for transformers; read back by read_hf_folder
    hf_state = {k: v.detach().cpu().contiguous().clone() for k, v in official_to_hf(state).items()}
    path = Path(path).expanduser()
    _warn_unscaled(normalization, int(cfg["in_chans"]), path)
    with atomic_path(path, replaces=check_hf_output) as tmp:
        tmp.mkdir(parents=True)
        (tmp / HF_CONFIG_FILE).write_text(json.dumps(hf_cfg, indent=2) + "\n")
        pp = hf_preprocessor_config(normalization, int(cfg["patch_size"]), int(cfg["in_chans"]))
        (tmp / HF_PREPROCESSOR_FILE).write_text(json.dumps(pp, indent=2) + "\n")
        save_file(hf_state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        set_default_mode(tmp / "model.safetensors")  # safetensors writes 0600
    return path


def _warn_unscaled(normalization: Mapping[str, Any] | None, in_chans: int, path: Path) -> None:
    """One line when a folder of more than 3 bands records no normalisation: its processor then passes pixel values
    through (rescale_factor 1, do_normalize false) while geodino's `preprocess` scales input by dtype
    (`geodino.data.dtype_rule`). No single `rescale_factor` is right: HF applies it whatever the dtype, so 1/10000
    would also divide float reflectance by 10000 and uint8 DN by 10000 instead of 255."""
    if normalization or in_chans == 3:
        return
    import warnings

    from geodino.data.dtype_rule import DTYPE_RULE
    from geodino.models.caller import user_stacklevel

    warnings.warn(
        f"HF folder {path} records no input normalisation for its {in_chans} bands: its processor passes pixel "
        "values through unchanged (rescale_factor 1, do_normalize false), while geodino scales input by dtype "
        f"({DTYPE_RULE}); feed the processor reflectance, or record the sensor (geodino convert "
        "--sensor NAME, plus --src-bands when its bands are some of the sensor's)",
        stacklevel=user_stacklevel(),
    )
