"""timm models as frozen baselines: building one by name, its geometry, and features through
`forward_intermediates`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from geodino.backbones.spec import as_bool, as_int
from geodino.errors import CheckpointError, ConfigError


def timm_geometry(model: nn.Module) -> tuple[int, int, int, int]:
    """(patch size / output stride, feature width, in_chans, number of selectable blocks) of a timm model."""
    # timm's classes differ in what they expose: read by attribute (`type: ignore`s below: nn.Module's __getattr__ is
    # typed Tensor | Module)
    pe = getattr(model, "patch_embed", None)
    if pe is not None and hasattr(pe, "patch_size"):
        ps = pe.patch_size
        patch = int(ps[0] if isinstance(ps, tuple | list) else ps)
        n = len(model.blocks) if hasattr(model, "blocks") else len(model.feature_info)  # type: ignore[arg-type]
        dim = int(getattr(model, "embed_dim", getattr(model, "num_features", 0)))
        if hasattr(pe, "proj"):
            in_chans = int(pe.proj.in_channels)
        else:
            in_chans = int(model.pretrained_cfg.get("in_chans", 3))  # type: ignore[union-attr, operator]
        return patch, dim, in_chans, n
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ConfigError(f"timm model {type(model).__name__} exposes neither patch_embed nor feature_info")
    reductions = [int(f["reduction"]) for f in info]
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return reductions[-1], int(info[-1]["num_chs"]), int(first.in_channels), len(reductions)


def check_timm_layers(model: nn.Module, idx: list[int], spec: str) -> None:
    """One line when a chosen stage of a timm CNN differs in width or stride from the last one: a FrozenBackbone's
    maps have its `embed_dim` channels on its `patch_size` grid (the last stage's), which feature rasters and probes
    size their outputs by; several ResNet stages failed there with a bare tensor-size RuntimeError."""
    info = list(getattr(model, "feature_info", None) or [])
    if hasattr(model, "blocks") or not info:
        return
    last = (int(info[-1]["num_chs"]), int(info[-1]["reduction"]))
    odd = [i for i in idx if (int(info[i]["num_chs"]), int(info[i]["reduction"])) != last]
    if odd:
        stages = ", ".join(f"{i}: {info[i]['num_chs']} ch at 1/{info[i]['reduction']}" for i in odd)
        raise ConfigError(
            f"backbone {spec}: {'stage' if len(odd) == 1 else 'stages'} {stages} "
            f"{'differs' if len(odd) == 1 else 'differ'} from the last stage ({last[0]} ch at 1/{last[1]}), whose "
            f"width and stride the backbone's features have; a timm CNN gives its last stage here: layers='last' "
            f"(or [{len(info) - 1}])"
        )


def timm_features(model: nn.Module, x: Tensor, idx: list[int], norm: bool) -> tuple[list[Tensor], list[Tensor]]:
    """Multi-layer features of any timm model through `forward_intermediates` (ViTs: prefix tokens give CLS;
    CNNs: CLS is the global average of the map)."""
    if not hasattr(model, "forward_intermediates"):
        raise ConfigError(f"timm model {type(model).__name__} has no forward_intermediates; choose another model")
    has_prefix = int(getattr(model, "num_prefix_tokens", 0) or 0) > 0
    kwargs: dict[str, Any] = {"indices": idx, "intermediates_only": True, "output_fmt": "NCHW"}
    if hasattr(model, "blocks"):
        kwargs["norm"] = norm
        if has_prefix:
            kwargs["return_prefix_tokens"] = True
    outs = model.forward_intermediates(x, **kwargs)  # type: ignore[operator]  # checked above; typed Tensor | Module
    maps, cls = [], []
    for o in outs:
        if isinstance(o, tuple):
            fmap, prefix = o
            maps.append(fmap.float())
            cls.append(prefix[:, 0].float())
        else:
            maps.append(o.float())
            cls.append(o.float().mean(dim=(2, 3)))
    return maps, cls


# timm.create_model's own sources: a model on the HF hub (`hf-hub:timm/vit_small_patch16_dinov3.lvd1689m`) or a
# local folder with config.json + weights (`local-dir:path`, what `geodino convert --to timm` writes); list_models
# knows neither, so they were refused as unknown names
TIMM_SOURCES = ("hf-hub:", "local-dir:")


def known_timm_name(name: str) -> bool:
    """Whether timm can build `name`: a registered architecture (with or without a `.tag`) or a hub/folder source."""
    import timm

    if not name.strip():  # `timm:` with no name: timm.list_models("") lists every model, so it passed
        return False
    return name.startswith(TIMM_SOURCES) or bool(timm.list_models(name) or timm.list_models(name.split(".")[0]))


def build_timm(name: str, options: dict[str, str], in_chans: int | None, seed: int | None) -> nn.Module:
    """A timm model by name (`TIMM_SOURCES` prefixes included), seeded, without a classifier head."""
    import timm

    if not known_timm_name(name):
        from geodino.errors import did_you_mean

        close = did_you_mean(name, timm.list_models(), n=3)
        raise ConfigError(f"unknown timm model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    pretrained = as_bool(options.get("pretrained", "false"), "pretrained")
    kwargs: dict[str, Any] = {"pretrained": pretrained, "num_classes": 0}
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    for key in ("img_size",):
        if key in options:
            kwargs[key] = as_int(options[key], key)
    try:
        with torch.random.fork_rng(devices=[]):  # seeded weights without moving the caller's generator
            if seed is not None:
                torch.manual_seed(seed)
            try:
                model = timm.create_model(name, dynamic_img_size=True, **kwargs)
            except TypeError:  # CNNs and others without a dynamic image size
                if seed is not None:
                    torch.manual_seed(seed)
                model = timm.create_model(name, **kwargs)
    except Exception as exc:
        if pretrained:
            raise CheckpointError(
                f"timm:{name} pretrained weights could not be fetched ({type(exc).__name__}); download them to the "
                "HF cache first or use pretrained=false"
            ) from exc
        raise
    return model
