"""Conversion between the official DINOv3 layout and timm's `vit_*_patch16_dinov3` (class `timm.models.eva.Eva`).

timm names the storage tokens `reg_token`, LayerScale `gamma_1`/`gamma_2`, splits the qkv bias into `q_bias` and
`v_bias` (the key bias is a fixed zero buffer, as the official masked key bias) and the SwiGLU input projections
into `fc1_g` (= w1, gated by SiLU) and `fc1_x` (= w2), with `fc2` = w3. It stores no mask token, RoPE periods or
`local_cls_norm` (writing warns when a non-zero mask token or a `local_cls_norm` is dropped, and records the latter
under `keymap.LOCAL_NORM_KEY`). A backbone without LayerScale gets gammas of ones (timm's DINOv3 entries always have
LayerScale), which come back as no LayerScale. The distilled S/B/L releases have all-zero qkv biases, so timm also
has variants without them (`*_dinov3`) beside the `*_dinov3_qkvb` ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from geodino.errors import CheckpointError
from geodino.models.caller import user_stacklevel
from geodino.models.checkpoints.infer import default_heads, rope_periods
from geodino.models.checkpoints.keymap import (
    KEEP_OFFICIAL,
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

# official -> timm names inside a block (SwiGLU: fc1_g = w1 gated by SiLU, fc1_x = w2, fc2 = w3)
_SAME = {"norm1": "norm1", "norm2": "norm2", "attn.proj": "attn.proj"}
_SWIGLU = {"mlp.w1": "mlp.fc1_g", "mlp.w2": "mlp.fc1_x", "mlp.w3": "mlp.fc2"}
_MLP = {"mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
_GLOBAL = {"patch_embed.proj": "patch_embed.proj", "norm": "norm"}  # outside blocks, the same in both layouts
_SCALES = {"ls1.gamma": "gamma_1", "ls2.gamma": "gamma_2"}

# geodino arch -> timm model name (without the _qkvb suffix); vit_large_plus has no timm entry.
TIMM_NAMES = {
    "vit_tiny": "vit_tiny_patch16_dinov3",
    "vit_small": "vit_small_patch16_dinov3",
    "vit_small_plus": "vit_small_plus_patch16_dinov3",
    "vit_base": "vit_base_patch16_dinov3",
    "vit_large": "vit_large_patch16_dinov3",
    "vit_huge_plus": "vit_huge_plus_patch16_dinov3",
    "vit_7b": "vit_7b_patch16_dinov3",
}


def _arch_for(dim: int, depth: int) -> dict[str, Any] | None:
    from geodino.models.archs import ARCHS, arch_kwargs

    for name, a in ARCHS.items():
        if a["embed_dim"] == dim and a["depth"] == depth:
            return arch_kwargs(name)
    return None


def timm_to_official(
    state: Mapping[str, Tensor],
    *,
    num_heads: int | None = None,
    rope_base: float = 100.0,
    qkv_bias: bool | None = None,
) -> dict[str, Tensor]:
    """timm Eva (DINOv3) state_dict -> official layout.

    `qkv_bias=None` writes a (zero) qkv bias when the file has none, unless the size is one whose official
    release has no qkv bias (the 7B), so the result loads strictly into the official model; the output is
    unchanged since that bias is zero.
    """
    s = dict(state)
    dim = int(s["cls_token"].shape[-1])
    depth = count_blocks(s)
    if depth == 0:
        raise CheckpointError("timm state_dict has no blocks (blocks.0.norm1.weight missing)")
    heads = num_heads or default_heads(dim)
    ref = _arch_for(dim, depth)
    has_qv = "blocks.0.attn.q_bias" in s
    if qkv_bias is None:
        qkv_bias = has_qv or ref is None or bool(ref["qkv_bias"])
    out: dict[str, Tensor] = {
        "cls_token": s["cls_token"],
        "mask_token": torch.zeros(1, dim, dtype=s["cls_token"].dtype),
        "rope_embed.periods": rope_periods(dim // heads, rope_base),
    }
    rename(out, s, "", "", _GLOBAL)
    if "reg_token" in s and s["reg_token"].numel() > 0:
        out["storage_tokens"] = s["reg_token"]
    for i in range(depth):
        b = f"blocks.{i}."
        w = s[f"{b}attn.qkv.weight"]
        out[f"{b}attn.qkv.weight"] = w
        if qkv_bias:
            zeros = w.new_zeros(dim)
            q = s.get(f"{b}attn.q_bias", zeros)
            v = s.get(f"{b}attn.v_bias", zeros)
            k = s.get(f"{b}attn.k_bias", zeros)
            out[f"{b}attn.qkv.bias"] = torch.cat([q, k, v])
            out[f"{b}attn.qkv.bias_mask"] = key_bias_mask(dim, w.dtype)
        ffn = _SWIGLU if f"{b}mlp.fc1_g.weight" in s else _MLP
        rename(out, s, b, b, invert({**_SAME, **ffn}))
        rename(out, s, b, b, invert(_SCALES), params=("",))
    drop_unit_scales(out, depth)
    return out


def official_to_timm(state: Mapping[str, Tensor], *, qkv_bias: bool | None = None) -> dict[str, Tensor]:
    """Official layout -> timm Eva state_dict. `qkv_bias=None` writes `q_bias`/`v_bias` only when they are
    non-zero (matching timm's `*_dinov3` vs `*_dinov3_qkvb` variants); True/False force it."""
    s = dict(state)
    refuse_untied_cls_norm(s, "timm Eva")
    dim = int(s["cls_token"].shape[-1])
    out: dict[str, Tensor] = {
        "cls_token": s["cls_token"],
    }
    rename(out, s, "", "", _GLOBAL)
    if "storage_tokens" in s:
        out["reg_token"] = s["storage_tokens"]
    biases = {}
    n_blocks = count_blocks(s)
    for i in range(n_blocks):
        b = f"blocks.{i}."
        bias = masked_qkv_bias(s, b)
        if bias is not None:
            biases[i] = bias.chunk(3)
            if biases[i][1].any():
                raise CheckpointError(
                    f"this backbone has a non-zero key bias, which timm Eva cannot express; {KEEP_OFFICIAL}"
                )
    write_bias = qkv_bias if qkv_bias is not None else any(q.any() or v.any() for q, _, v in biases.values())
    for j in range(n_blocks):
        b = f"blocks.{j}."
        out[f"{b}attn.qkv.weight"] = s[f"{b}attn.qkv.weight"]
        if write_bias:
            q, _, v = biases.get(j, (torch.zeros(dim),) * 3)
            out[f"{b}attn.q_bias"] = q
            out[f"{b}attn.v_bias"] = v
        ffn = _SWIGLU if f"{b}mlp.w1.weight" in s else _MLP
        rename(out, s, b, b, {**_SAME, **ffn})
        rename(out, s, b, b, _SCALES, params=("",))
        for src, dst in _SCALES.items():
            if f"{b}{src}" not in s:  # no LayerScale: timm's DINOv3 entries always have it, identity gammas
                w = s[f"{b}norm1.weight"]
                out[f"{b}{dst}"] = torch.ones(dim, dtype=w.dtype, device=w.device)
        # timm's Eva always has projection and FFN biases: a backbone without them gets zero ones (same output)
        for src, dst in {"attn.proj": "attn.proj", **ffn}.items():
            if f"{b}{dst}.bias" not in out:
                w = s[f"{b}{src}.weight"]
                out[f"{b}{dst}.bias"] = w.new_zeros(w.shape[0])
    return out


def timm_model_for(config: Mapping[str, Any], *, qkv_bias: bool = True, **kwargs: Any):
    """A randomly initialised timm Eva with the architecture of a geodino config (for parity and benchmarks).

    Built from timm's DINOv3 S (MLP) or S+ (SwiGLU) definition with every size overridden, so any geodino
    architecture (including ones timm does not list, e.g. vit_large_plus) has its timm twin.
    """
    import timm

    name = _timm_base_name(config, qkv_bias)
    args: dict[str, Any] = {"pretrained": False, "num_classes": 0, **timm_model_args(config)}
    args.pop("dynamic_img_size")
    args.update(kwargs)
    model = timm.create_model(name, **args)
    # timm's own classes, read by attribute (nn.Module's __getattr__ is typed Tensor | Module)
    got = model.blocks[0].mlp.fc2.in_features  # type: ignore[index, union-attr]
    if got != int(config["ffn_hidden_dim"]):
        raise CheckpointError(f"timm built an FFN of width {got} instead of {config['ffn_hidden_dim']}")
    return model


def _timm_base_name(config: Mapping[str, Any], qkv_bias: bool) -> str:
    """timm's DINOv3 S (MLP) or S+ (SwiGLU) entry, every size overridden by `timm_model_args`."""
    swiglu = str(config["ffn_layer"]).startswith("swiglu")
    name = "vit_small_plus_patch16_dinov3" if swiglu else "vit_small_patch16_dinov3"
    return name + ("_qkvb" if qkv_bias else "")


def timm_model_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """`timm.create_model` kwargs that rebuild the architecture of a geodino config on timm's Eva.

    `global_pool="token"`: the model's pooled output (`model(x)`, `forward_head`) is the class token, the DINOv3
    convention and what geodino's probes use; timm's DINOv3 entries default to `avg` (the mean patch token),
    and `timm.create_model("local-dir:...")` takes the pooling from `model_args` only, not from the top-level
    `global_pool` of config.json."""
    check_portable(config, "timm's DINOv3 Eva", "rope_temperature")
    dim = int(config["embed_dim"])
    args: dict[str, Any] = {
        "global_pool": "token",
        "in_chans": int(config["in_chans"]),
        "patch_size": int(config["patch_size"]),
        "embed_dim": dim,
        "depth": int(config["depth"]),
        "num_heads": int(config["num_heads"]),
        "num_reg_tokens": int(config.get("n_storage_tokens", 4)),
        "mlp_ratio": int(config["ffn_hidden_dim"]) / dim,
        "img_size": 224,
        "dynamic_img_size": True,
        # timm's DINOv3 entries fix rope_temperature=100 (the released base); another base must be passed on
        "rope_temperature": float(config["pos_embed_rope_base"]),
    }
    # the train-time RoPE coordinate augmentation (the released models: rescale 2), which timm's DINOv3 entries leave
    # off: without it an unfrozen timm / torchgeo backbone fine-tuned with none, unlike geodino and the HF export
    for key in ("shift", "jitter", "rescale"):
        value = config.get(f"pos_embed_rope_{key}_coords")
        if value is not None:
            args[f"rope_{key}_coords"] = float(value)
    # no LayerScale (layerscale_init None) keeps timm's default init_values: `init_values=None` is ignored by
    # timm.create_model (it drops None kwargs), which then built gammas the file lacked; `official_to_timm` writes
    # gammas of ones instead
    if str(config["ffn_layer"]).startswith("swiglu"):
        args["swiglu_align_to"] = 8
    return args


def _pretrained_cfg(config: Mapping[str, Any], normalization: Mapping[str, Any] | None) -> dict[str, Any]:
    """timm `pretrained_cfg`: mean/std in the units after the DN scale (as ImageNet's are after /255)."""
    cfg: dict[str, Any] = {
        "input_size": [int(config["in_chans"]), 224, 224],
        "fixed_input_size": False,
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "num_classes": 0,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": "see the backbone's source",
    }
    if normalization:
        cfg["mean"] = list(normalization["mean"])
        cfg["std"] = list(normalization["std"])
    elif int(config["in_chans"]) != 3:  # nothing recorded: identity, not timm's inherited ImageNet statistics
        cfg["mean"] = [0.0] * int(config["in_chans"])
        cfg["std"] = [1.0] * int(config["in_chans"])
    return cfg


def _has_qkv_bias(timm_state: Mapping[str, Tensor]) -> bool:
    return "blocks.0.attn.q_bias" in timm_state


def timm_metadata(
    state: Mapping[str, Tensor], config: Mapping[str, Any] | None, normalization: Mapping[str, Any] | None
) -> dict[str, str]:
    """safetensors metadata of a timm file: `pretrained_cfg` (JSON: mean/std, input size) and the timm
    `architecture` + `model_args` that rebuild it."""
    import json
    import warnings

    from geodino.models.checkpoints.infer import infer_config

    cfg = dict(infer_config(state))
    if config:
        cfg.update({k: v for k, v in config.items() if k in cfg and k not in ("ffn_hidden_dim", "depth", "embed_dim")})
    # what timm cannot express is refused before any warning about what the conversion drops or changes
    timm_state = official_to_timm(state)
    model_args = timm_model_args(cfg)
    if cfg.get("norm_layer") == "layernorm":
        warnings.warn(
            "this backbone's LayerNorms have eps 1e-6 (norm_layer layernorm) and timm's DINOv3 Eva fixes eps 1e-5: "
            "the timm model's features differ slightly from geodino's; --to hf keeps the eps exactly",
            stacklevel=user_stacklevel(),
        )
    mask = state.get("mask_token")
    if mask is not None and not mask.is_meta and bool(mask.any()):
        warnings.warn(
            "timm's DINOv3 Eva stores no mask token: this backbone's non-zero mask_token (the iBOT mask token; it "
            "matters only if SSL continues from the file) is dropped, and converting back gives zeros; the official "
            "or HF layout keeps it",
            stacklevel=user_stacklevel(),
        )
    meta = {
        "pretrained_cfg": json.dumps(_pretrained_cfg(cfg, normalization)),
        "architecture": _timm_base_name(cfg, _has_qkv_bias(timm_state)),
        "model_args": json.dumps(model_args),
    }
    if warn_local_norm_dropped(state, "timm's DINOv3 Eva"):
        meta[LOCAL_NORM_KEY] = "true"  # read back by `recorded_local_norm`
    return meta


TIMM_EXPORT_FILES = ("config.json", "model.safetensors")  # what `write_timm_folder` writes


def check_timm_output(path: Any) -> None:
    """Refuse (one line) a timm output folder that exists and is neither empty nor an earlier timm export holding
    only its files: --overwrite must never replace a folder of other content."""
    from pathlib import Path

    from geodino.io import check_replaceable_folder

    check_replaceable_folder(Path(path), TIMM_EXPORT_FILES, "timm export", is_timm_folder)


def write_timm_folder(
    state: Mapping[str, Tensor],
    path: Any,
    *,
    config: Mapping[str, Any] | None = None,
    normalization: Mapping[str, Any] | None = None,
):
    """A timm model folder (config.json with `architecture`, `model_args`, `pretrained_cfg` + model.safetensors),
    loadable offline with `timm.create_model("local-dir:PATH", pretrained=True)`; the geodino normalisation
    record is kept as an extra key of config.json."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    from geodino.io import atomic_path, set_default_mode
    from geodino.models.checkpoints.normalization import NORMALIZATION_KEY

    meta = timm_metadata(state, config, normalization)
    timm_state = {k: v.detach().cpu().contiguous().clone() for k, v in official_to_timm(state).items()}
    cfg_json = {
        "architecture": meta["architecture"],
        "num_classes": 0,
        "num_features": int(state["cls_token"].shape[-1]),
        "global_pool": "token",
        "model_args": json.loads(meta["model_args"]),
        "pretrained_cfg": json.loads(meta["pretrained_cfg"]),
    }
    if normalization:
        cfg_json[NORMALIZATION_KEY] = dict(normalization)
    if LOCAL_NORM_KEY in meta:
        cfg_json[LOCAL_NORM_KEY] = True
    path = Path(path).expanduser()
    with atomic_path(path, replaces=check_timm_output) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
        save_file(timm_state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        set_default_mode(tmp / "model.safetensors")
    return path


def timm_layout_hints(model_args: Any) -> dict[str, Any]:
    """`timm_to_official` kwargs from a timm `model_args` record (dict or JSON): the head count and RoPE base,
    which a timm state_dict does not store (without them: the arch table's heads for the width and base 100)."""
    import json

    if isinstance(model_args, str):
        try:
            model_args = json.loads(model_args)
        except json.JSONDecodeError:
            return {}
    if not isinstance(model_args, Mapping):
        return {}
    hints: dict[str, Any] = {}
    if model_args.get("num_heads"):
        hints["num_heads"] = int(model_args["num_heads"])
    if model_args.get("rope_temperature"):
        hints["rope_base"] = float(model_args["rope_temperature"])
    return hints


def is_timm_folder(path: Any) -> bool:
    """True for a timm model folder (config.json naming a timm `architecture`, no HF `model_type`)."""
    import json
    from pathlib import Path

    f = Path(path) / "config.json"
    try:
        cfg = json.loads(f.read_text()) if f.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(cfg, dict) and "architecture" in cfg and "model_type" not in cfg


def read_timm_folder(path: Any):
    """A timm folder written by `write_timm_folder` (or timm's own `save_for_hf`) as `BackboneWeights`."""
    import json
    from pathlib import Path

    from geodino.models.checkpoints.files import BackboneWeights, read_file
    from geodino.models.checkpoints.normalization import NORMALIZATION_KEY, check_normalization, from_mean_std

    path = Path(path)
    cfg = json.loads((path / "config.json").read_text())
    weights_file = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()), None)
    if weights_file is None:
        raise CheckpointError(f"timm folder {path} has no model.safetensors or pytorch_model.bin")
    obj, _ = read_file(weights_file)
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if "cls_token" not in state or "blocks.0.norm1.weight" not in state:
        raise CheckpointError(f"timm folder {path}: {cfg.get('architecture')!r} is not a DINOv3 (Eva) ViT")
    official = timm_to_official(state, **timm_layout_hints(cfg.get("model_args")))
    weights = BackboneWeights(state=official, source=path, layout="timm", kind="timm-folder")
    weights.local_cls_norm = recorded_local_norm(cfg)
    pcfg = cfg.get("pretrained_cfg") or {}
    if cfg.get(NORMALIZATION_KEY):
        weights.normalization = check_normalization(cfg[NORMALIZATION_KEY], str(path / "config.json"))
        weights.normalization_from = f"{path.name}/config.json ({NORMALIZATION_KEY})"
    elif pcfg.get("mean") and pcfg.get("std"):
        weights.normalization = from_mean_std(pcfg["mean"], pcfg["std"], origin="timm pretrained_cfg")
        weights.normalization_from = f"{path.name}/config.json (pretrained_cfg)"
    return weights


def recorded_local_norm(record: Mapping[str, Any]) -> bool | None:
    """Whether a timm/HF record (safetensors metadata, config.json, `.heads.pth` sidecar) says the official model
    has `local_cls_norm` (`LOCAL_NORM_KEY`, written as "true" in metadata, true in JSON); None when it says nothing."""
    value = record.get(LOCAL_NORM_KEY)
    if value is None:
        return None
    return value is True or str(value).lower() == "true"
