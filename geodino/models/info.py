"""What `geodino info` prints: the architecture table, and the description of a backbone spec or file.

A file is described from its weights alone (no model is built), so even a 7B checkpoint is cheap to inspect.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from geodino.models.archs import ARCHS, RELEASED, arch_kwargs


def arch_table() -> list[dict[str, Any]]:
    """One row per architecture: sizes, FFN, storage tokens and parameter count (built on the meta device)."""
    from geodino.models import build_model, count_parameters

    rows = []
    for name in ARCHS:
        kw = arch_kwargs(name)
        model = build_model(name, device="meta")
        rows.append(
            {
                "arch": name,
                "embed_dim": kw["embed_dim"],
                "depth": kw["depth"],
                "heads": kw["num_heads"],
                "ffn": kw["ffn_layer"],
                "ffn_hidden": model.config["ffn_hidden_dim"],
                "storage": kw["n_storage_tokens"],
                "params": count_parameters(model),
                "keys": len(model.state_dict()),
                "released": RELEASED.get(name, ""),
            }
        )
    return rows


def describe(spec: str | Path, image_size: list[int] | None = None) -> dict[str, Any]:
    """Architecture, parameter count, bands, patch size and key count of a spec (file, HF folder, arch:, timm:);
    with `image_size` ([H] or [H, W]) also the patch grid, token count and feature-map shape for that input."""
    info = _describe(spec)
    if image_size:
        info.update(token_grid(image_size, int(info["patch_size"]), int(info["embed_dim"]), info.get("n_prefix")))
    info.pop("n_prefix", None)
    return info


def token_grid(image_size: list[int], patch: int, dim: int, n_prefix: int | None = None) -> dict[str, Any]:
    """Patch grid, token count and feature-map shape for an H×W input; InputError when H or W is not a
    multiple of the patch size."""
    from geodino.errors import InputError

    if len(image_size) not in (1, 2) or min(image_size) <= 0:
        raise InputError(
            f"--image-size takes H or H W in pixels (image_size=[H] or [H, W] in Python), got {image_size}"
        )
    h, w = (image_size[0], image_size[0]) if len(image_size) == 1 else image_size
    if h % patch or w % patch:
        lo = f"{max(patch, h // patch * patch)}x{max(patch, w // patch * patch)}"
        hi = f"{-(-h // patch) * patch}x{-(-w // patch) * patch}"
        raise InputError(
            f"image size {h}x{w} is not a multiple of the patch size {patch}; crop or pad to {lo} (or {hi})"
        )
    out: dict[str, Any] = {
        "grid": f"{h // patch}x{w // patch} patches",
        "feature_map": f"[{dim}, {h // patch}, {w // patch}]",
    }
    if n_prefix is not None:
        out["tokens"] = f"{h // patch * (w // patch) + n_prefix} ({n_prefix} prefix + patches)"
    return out


def _geometry(cfg: dict[str, Any]) -> dict[str, Any]:
    """The rows `geodino info` shows for a geodino build config (inferred from a file or built from a name)."""
    return {
        "bands": cfg["in_chans"],
        "patch_size": cfg["patch_size"],
        "embed_dim": cfg["embed_dim"],
        "depth": cfg["depth"],
        "heads": cfg["num_heads"],
        "ffn": f"{cfg['ffn_layer']} ({cfg['ffn_hidden_dim']})",
        "storage_tokens": cfg["n_storage_tokens"],
    }


def _fit(state: Any, cfg: dict[str, Any], source: Any) -> str:
    """'every key and shape fits' or the one-line reason the file would not load (an incomplete or damaged file
    looks like an architecture to the rows above, so the check is what tells)."""
    from geodino.errors import CheckpointError
    from geodino.models.checkpoints.convert import check_architecture

    try:
        check_architecture(state, None, None, cfg, source)
    except CheckpointError as exc:
        return f"DO NOT LOAD: {exc}"
    return "every key and shape fits the architecture"


def _describe(spec: str | Path) -> dict[str, Any]:
    from geodino.backbones import parse_spec
    from geodino.backbones.spec import check_kind_options
    from geodino.data.band_args import parse_backbone_bands

    kind, target, options = parse_spec(spec)
    # what load_backbone(spec) refuses is refused here, in its line: `timm:NAME?depth=1` was described as the full
    # model and `FILE?seed=1` as the file, while the same spec failed everywhere else (exit 2)
    check_kind_options(kind, options, str(spec))
    n_bands, names = parse_backbone_bands(options.get("bands"))
    if kind == "path":
        from geodino.backbones.load import check_spec
        from geodino.models.checkpoints import infer_config, read_backbone_weights

        check_spec(spec)  # fill=/subset= values and the file's existence, as its load checks them
        weights = read_backbone_weights(Path(target).expanduser(), which=options.get("which"))
        cfg = infer_config(weights.state, weights.source)
        params = sum(v.numel() for k, v in weights.state.items() if not k.endswith(("periods", "bias_mask")))
        return {
            "spec": str(spec),
            "layout": weights.layout,
            "kind": weights.kind,
            # which network of a file holding several (a distill checkpoint's student, EMA or raw, and its step)
            **({"network": weights.network} if weights.network else {}),
            "arch": cfg["arch"] or "custom",
            "params": params,
            **_geometry(cfg),
            "local_cls_norm": cfg["untie_global_and_local_cls_norm"],
            "n_prefix": 1 + cfg["n_storage_tokens"],
            "keys": len(weights.state),
            "dtype": str(next(iter(weights.state.values())).dtype).replace("torch.", ""),
            "weights": _fit(weights.state, cfg, weights.source),
            **normalization_rows(weights, cfg["in_chans"], Path(target).expanduser()),
            **_adapted(n_bands, names, cfg["in_chans"], target),
            **_checked_bands_sensor(weights, Path(target).expanduser(), options, names, str(spec)),
        }
    if kind == "arch":
        from geodino.backbones import as_int, parse_value
        from geodino.backbones.load import check_spec
        from geodino.data.band_args import parse_backbone_bands
        from geodino.models import build_model, count_parameters

        check_spec(spec)  # what load_backbone(spec) would refuse (band numbers, bands != in_chans, ...) is refused here
        overrides = {k: parse_value(v) for k, v in options.items() if k not in ("seed", "sensor", "fill")}
        n_bands, _ = parse_backbone_bands(overrides.pop("bands", None))
        in_chans = as_int(str(overrides.pop("in_chans", n_bands or 3)), "in_chans")
        model = build_model(target, in_chans=in_chans, device="meta", **overrides)
        cfg = model.config
        return {
            "spec": str(spec),
            "arch": target,
            "params": count_parameters(model),
            **_geometry(cfg),
            "keys": len(model.state_dict()),
            "n_prefix": 1 + cfg["n_storage_tokens"],
        }
    if kind == "baseline":  # parameter-free features: what the probes and embed see of it
        from geodino.backbones import load_backbone

        fb = load_backbone(str(spec))
        return {
            "spec": str(spec),
            "arch": f"baseline {target} (per-band statistics, no weights)",
            "params": 0,
            "bands": fb.in_chans,
            "patch_size": fb.patch_size,
            "embed_dim": fb.embed_dim,
            "depth": fb.n_blocks,
        }
    from geodino.backbones import build_timm, timm_geometry
    from geodino.backbones.load import check_spec

    check_spec(spec)  # option values as its load reads them (`?seed=abc` was described, not refused)
    from geodino.backbones.spec import as_bool

    as_bool(options.get("pretrained", "false"), "pretrained")  # `?pretrained=maybe` was described (its load refuses)
    with torch.device("meta"):
        # ?bands= sets timm's in_chans as load_backbone's build does (it was dropped: bands=4 showed 3)
        model = build_timm(target, {k: v for k, v in options.items() if k != "pretrained"}, n_bands, None)
    patch, dim, in_chans, n = timm_geometry(model)
    return {
        "spec": str(spec),
        "arch": f"timm {type(model).__name__}",
        "params": sum(p.numel() for p in model.parameters()),
        "bands": in_chans,
        "patch_size": patch,
        "embed_dim": dim,
        "depth": n,
        "keys": len(model.state_dict()),
    }


def _numbers(v: Any) -> str:
    """A scalar or per-band list of floats, short (4 significant digits)."""
    if isinstance(v, list | tuple):
        return ", ".join(f"{float(x):.4g}" for x in v)
    return f"{float(v):.4g}"


def normalization_rows(weights: Any, in_chans: int, path: Path) -> dict[str, Any]:
    """The rows saying how the file's inputs are normalised: the record it carries (sensor, bands, DN scale and
    offset, mean/std in reflectance units) and where it was read, or, with none, what `load_backbone` assumes
    (`geodino info` showed only the band count, so an export's preprocessing could not be checked)."""
    rec = weights.normalization
    if rec:
        from geodino.models.checkpoints.normalization import describe_normalization

        return {
            "normalization": f"{describe_normalization(rec, weights.normalization_from)} (read from "
            f"{weights.normalization_from})",
            "norm_bands": ", ".join(map(str, rec.get("bands") or [])) or "(unnamed)",
            "dn_scale": _dn_scale_row(rec),
            "norm_mean": _numbers(rec["mean"]),
            "norm_std": _numbers(rec["std"]),
        }
    from geodino.backbones.load import default_sensor_of
    from geodino.data.dtype_rule import DTYPE_RULE  # lazy: models/ imports only torch at module level

    sensor = default_sensor_of(path, weights.config or {}, in_chans)
    if sensor:
        what = f"sensor {sensor}'s mean/std (the file's default)"
    else:
        what = "ImageNet mean/std (the 3-band default)" if in_chans == 3 else "mean 0 / std 1"
        what += f"; input scaled by dtype ({DTYPE_RULE})"
    return {"normalization": f"none recorded: geodino assumes {what}; pass sensor= (?sensor=) to set it"}


def _dn_scale_row(rec: dict[str, Any]) -> str:
    """The DN step geodino applies with this record: its scale and offset, or, for a bare mean/std (no sensor,
    scale 1, e.g. a timm pretrained_cfg), the dtype rule (`dn_scale_of` is None), which the row read as
    'reflectance = DN * 1 + 0' while preprocess divided int16 5000 by 10000."""
    from geodino.data.dtype_rule import DTYPE_RULE  # lazy: models/ imports only torch at module level
    from geodino.models.checkpoints.normalization import dn_scale_of

    if dn_scale_of(rec) is None:
        return f"none recorded (a bare mean/std): input scaled by dtype ({DTYPE_RULE})"
    return f"reflectance = DN * {_numbers(rec.get('scale', 1.0))} + {_numbers(rec.get('offset', 0.0))}"


def _adapted(n_bands: int | None, names: list[str] | None, in_chans: int, target: str) -> dict[str, Any]:
    """The row saying a checkpoint's `?bands=` adapts its patch embedding on load: the rows above describe the
    file, whose band count `bands` is, not the backbone the spec loads (`FILE?bands=red,nir` takes 2 bands). A
    count other than the file's without names is refused, as its load refuses it (nothing says which kernels)."""
    if n_bands is None or (n_bands == in_chans and names is None):
        return {}
    if names is None:
        from geodino.errors import CheckpointError

        raise CheckpointError(
            f"checkpoint {Path(target).expanduser()} has {in_chans} input bands but bands={n_bands} was requested; "
            "name the bands (bands=B02,B03,...) to adapt its patch embedding"
        )
    said = f" ({', '.join(names)})" if names else ""
    return {"loaded_bands": f"{n_bands}{said}, the spec's ?bands= (the rows above are the file's {in_chans} bands)"}


def _checked_bands_sensor(
    weights: Any, path: Path, options: dict[str, str], names: list[str] | None, spec: str
) -> dict[str, Any]:
    """Refuse a checkpoint spec's `?bands=` names and `?sensor=` as its load refuses them (an unknown sensor, band
    names that sensors number differently, a sensor whose band count is not the bands'), on the patch embedding
    alone: `FILE?sensor=nosuch` and `FILE?bands=SR_B2,SR_B3,SR_B4` were described (exit 0) while every command
    loading the same spec failed. Returns the `loaded_sensor` row for a `?sensor=` (the `normalization` row, which
    describes the file, said "pass sensor= (?sensor=) to set it" as if none had been passed)."""
    sensor = options.get("sensor") or None
    config = weights.config or {}
    src = config.get("bands") if isinstance(config.get("bands"), list) else None
    if src is None and weights.normalization and weights.normalization.get("bands"):
        src = list(weights.normalization["bands"])
    w = weights.state["patch_embed.proj.weight"]
    if src is None and int(w.shape[1]) == 3:
        src = ["R", "G", "B"]
    if names is not None:
        from geodino.models.checkpoints import resolve_bands

        with warnings.catch_warnings():  # the load's own warnings (a band given the mean kernel) are its to give
            warnings.simplefilter("ignore")
            resolve_bands(
                {"patch_embed.proj.weight": w},
                names,
                src_bands=src,
                sensor=sensor,
                fill=options.get("fill", "mean"),
                source=path,
                check_sensor=False,
                src_sensor=(weights.normalization or {}).get("sensor") or config.get("sensor"),
                subset=options.get("subset", "copy"),
            )
    if sensor is not None:
        from geodino.backbones.normalization import sensor_stats

        bands = names if names is not None else src
        s = sensor_stats(sensor, bands, len(bands) if bands else int(w.shape[1]), spec, None)[0]
        name = getattr(s, "name", s)
        return {"loaded_sensor": f"{name}, the spec's ?sensor=: the load standardises with its mean/std"}
    return {}


def format_params(n: int) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"
