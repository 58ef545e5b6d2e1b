"""A geodino backbone for TerraTorch: `geodino_vit`, registered in TerraTorch's backbone registry.

TerraTorch builds backbones by name from `terratorch.registry.BACKBONE_REGISTRY`; a library adds its own by
decorating a constructor with `TERRATORCH_BACKBONE_REGISTRY.register` (the registry keys it by the function's
`__name__`). Its encoder-decoder factory calls the constructor with the `backbone_*` options of the model
config (`backbone_ckpt_path`, `backbone_bands`, ...), and expects a module with `out_channels` (one width per
returned feature) whose `forward` returns a list of tensors; for ViTs those are token sequences [B, 1 + N, D]
(class token first) that its `ReshapeTokensToImage` neck turns into maps.

Importing this module registers `geodino_vit` when TerraTorch is installed (TerraTorch is optional: without it
the constructor still works as a plain function, and nothing is registered). Make TerraTorch import it with
`custom_modules_path` / a `custom_modules` package that does `import geodino.integrations.terratorch`.

Any band count: `bands` names the input bands (TerraTorch's band enums or strings); when they differ from the
bands the file records (or R, G, B for 3-band files), the patch embedding is adapted by name
(`geodino.models.checkpoints.resolve_bands`: matching bands keep their kernel, others get the mean kernel).
`model_bands` (the input bands as TerraTorch's torchgeo ViT/ResNet backbones name them, `backbone_model_bands`
in a config) is taken as `bands`; both given and different is refused. A plain count (`bands=6` or
`in_chans=6`) works only when the file has that many bands or when `bands` names are given. `ckpt_path=None`
gives a random `arch` (for tests and from-scratch training). Any other option (e.g. TerraTorch's `num_frames`)
is dropped with one warning naming it, so a setting meant for another backbone does not pass unnoticed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from geodino.errors import ConfigError, plural
from geodino.models.caller import user_stacklevel

__all__ = ["GeoDinoTerraTorchBackbone", "datamodule_stats", "geodino_vit", "register"]


def _text_bands(bands: Any, key: str) -> Any:
    """Bands given as one string ("blue,green,red,nir", or a count "4") as load_backbone and `?bands=` read them;
    anything else unchanged. A plain string was iterated letter by letter: bands="red" became bands r, e, d."""
    if not isinstance(bands, str):
        return bands
    from geodino.data.band_args import parse_backbone_bands

    count, names = parse_backbone_bands(bands, key)
    return names if names is not None else count


def _band_names(bands: Any) -> list[str] | None:
    """Band names from TerraTorch band enums (their value or name), strings, or None."""
    if bands is None or isinstance(bands, int):
        return None
    out = []
    for b in bands:
        value = getattr(b, "value", b)
        out.append(str(value if isinstance(value, str) else getattr(b, "name", value)))
    return out


# Options TerraTorch's EncoderDecoderFactory reads from the `backbone_*` keys itself and also passes on to the
# backbone: accepted without a warning, since they are not dropped.
_FACTORY_OPTIONS = frozenset({"padding"})


def _describe(bands: Any) -> str:
    names = _band_names(bands)
    return f"[{', '.join(names)}]" if names is not None else str(bands)


def _merge_model_bands(bands: Any, model_bands: Any) -> Any:
    """One band list from `bands` and TerraTorch's `model_bands` (the same setting under TerraTorch's name);
    refuses two that differ, since either could be the one the data follows."""
    from geodino.models.checkpoints.bands import same_bands

    if model_bands is None or bands is None:
        return bands if model_bands is None else model_bands
    a, b = _band_names(bands), _band_names(model_bands)
    if a is not None and b is not None:
        agree = same_bands(a, b)
    else:  # a count and names (or two counts): the counts must agree; names win
        agree = (len(a) if a is not None else bands) == (len(b) if b is not None else model_bands)
    if not agree:
        raise ConfigError(
            f"geodino_vit got bands={_describe(bands)} and model_bands={_describe(model_bands)}, which differ; "
            "give one of them (backbone_bands or backbone_model_bands in a TerraTorch config)"
        )
    return model_bands if b is not None else bands


def _warn_dropped(kwargs: dict[str, Any]) -> None:
    """One warning naming the options `geodino_vit` does not use (a setting meant for another backbone)."""
    dropped = sorted(set(kwargs) - _FACTORY_OPTIONS)
    if dropped:
        warnings.warn(
            f"geodino_vit ignores {plural(len(dropped), 'option')} {', '.join(dropped)}: it takes ckpt_path, bands "
            "(or model_bands), sensor, out_indices, return_cls_token, pretrained, arch, patch_size, in_chans, fill "
            "and subset",
            stacklevel=user_stacklevel(),
        )


class GeoDinoTerraTorchBackbone(nn.Module):
    """A trainable geodino ViT returning token sequences of chosen blocks, as TerraTorch's ViT backbones do."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | int | None, return_cls_token: bool) -> None:
        super().__init__()
        from geodino.backbones import layer_indices

        self.model = model
        # local_cls_norm (the SAT-493M ViT-L and the 7B have one) normalises local crops in SSL only: this forward
        # never uses it, and DDP (Lightning's default multi-GPU strategy, find_unused_parameters=False) then failed
        # on the second step ("Expected to have finished reduction in the prior iteration"). Frozen, it stays in the
        # state_dict, so TerraTorch's fine-tuned checkpoints still load into the deploy model strictly.
        local = getattr(model, "local_cls_norm", None)
        if isinstance(local, nn.Module):
            local.requires_grad_(False)
        # cls_norm (untie_cls_and_patch_norms) normalises the prefix tokens only: without the CLS token in the output
        # (return_cls_token=False) nothing it computes is returned, so it is frozen for the same DDP reason
        cls_norm = getattr(model, "cls_norm", None)
        if isinstance(cls_norm, nn.Module) and not return_cls_token:
            cls_norm.requires_grad_(False)
        n = int(model.n_blocks)
        # a count takes the last blocks, as timm's out_indices=N (and layer_indices) do
        self.out_indices = layer_indices(out_indices, n) if out_indices is not None else list(range(n))
        # blocks after the last taken one run (official get_intermediate_layers) but feed no output: frozen, for the
        # same DDP reason (out_indices [2, 5, 8, 11] on a 24-block ViT-L left blocks 12-23 without gradients)
        for block in list(model.blocks)[max(self.out_indices) + 1 :]:
            block.requires_grad_(False)
        self.return_cls_token = return_cls_token
        self.out_channels = [int(model.embed_dim)] * len(self.out_indices)
        self.patch_size = int(model.patch_size)
        self.in_chans = int(model.in_chans)

    def forward(self, x: Tensor, **kwargs: Any) -> list[Tensor]:
        """Tokens [B, (1 +) N, D] of each block in `out_indices` (final norm applied, storage tokens dropped). Other
        batch keys TerraTorch's tasks pass on (`metadata`, temporal or location coordinates) are not used."""
        self._grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        outs = self.model.get_intermediate_layers(x, n=self.out_indices, return_class_token=self.return_cls_token)
        if self.return_cls_token:
            return [torch.cat([c.unsqueeze(1), p], dim=1) for p, c in outs]
        return list(outs)

    def prepare_features_for_image_model(self, features: list[Tensor]) -> list[Tensor]:
        """Token maps [B, D, H/p, W/p] of the last forward, without the CLS token: what TerraTorch's pixel-wise
        models use when a config has no `necks` (its ViT backbones' convention). The grid is the last input's, so
        non-square images reshape right (a square root of the token count would not)."""
        h, w = self._grid
        return [t[:, -h * w :].transpose(1, 2).reshape(t.shape[0], t.shape[-1], h, w) for t in features]


def geodino_vit(
    ckpt_path: str | None = None,
    bands: Sequence[Any] | int | str | None = None,
    out_indices: Sequence[int] | int | None = None,
    return_cls_token: bool = True,
    pretrained: bool = True,
    arch: str = "vit_small",
    patch_size: int | None = None,
    in_chans: int | None = None,
    fill: str = "mean",
    model_bands: Sequence[Any] | int | str | None = None,
    sensor: str | None = None,
    subset: str = "copy",
    **kwargs: Any,
) -> GeoDinoTerraTorchBackbone:
    """TerraTorch backbone constructor: a geodino export, checkpoint, HF or timm folder (`ckpt_path`) with its
    patch embedding adapted to `bands`; with `pretrained=False` the same architecture at the official random
    initialisation (TerraTorch's deploy config sets `backbone_pretrained: false` and then loads the fine-tuned
    weights into it); a random `arch` (patch 16 unless `patch_size`) without `ckpt_path`. A `patch_size` that
    differs from the checkpoint's is refused (TerraTorch pads inputs to it).
    `model_bands` (TerraTorch's name for the input bands) is the same as `bands`; `sensor` (backbone_sensor)
    names the sensor the band names come from (landsat7 and landsat8 number SR_Bn differently); other unknown
    options are dropped with a warning naming them. `subset` (backbone_subset): the rule for a subset of the
    checkpoint's bands, "copy" (the trained kernels unscaled) or "rescale" (scaled by C_src / C_dst, the rule
    before; `geodino.models.checkpoints.adapt_patch_embed`)."""
    _warn_dropped(kwargs)
    bands = _merge_model_bands(_text_bands(bands, "bands"), _text_bands(model_bands, "model_bands"))
    names = _band_names(bands)
    if names and in_chans is not None and int(in_chans) != len(names):
        raise ConfigError(
            f"geodino_vit got in_chans={in_chans} and {len(names)} band names ({', '.join(names)}); drop in_chans "
            "(the names decide the band count) or name every band"
        )
    count = len(names) if names else (bands if isinstance(bands, int) else in_chans)
    if ckpt_path:
        from geodino.models.checkpoints import load_model, read_backbone_weights

        weights = read_backbone_weights(ckpt_path)
        c = int(weights.state["patch_embed.proj.weight"].shape[1])
        if count is not None and count != c and not names:
            raise ConfigError(
                f"backbone {ckpt_path} has {c} input bands but {count} were requested; name them "
                "(backbone_bands: [BLUE, GREEN, ...]) so the patch embedding can be adapted by name"
            )
        src = (weights.normalization or {}).get("bands") or (weights.config or {}).get("bands")
        model = load_model(ckpt_path, bands=names, src_bands=src, fill=fill, sensor=sensor, subset=subset)
        if patch_size is not None and int(patch_size) != int(model.patch_size):
            raise ConfigError(
                f"geodino_vit got patch_size={patch_size} but {ckpt_path} has patch size {model.patch_size}; drop "
                "backbone_patch_size (TerraTorch pads inputs to it, so a different value fails on the first batch)"
            )
        if not pretrained:  # the checkpoint's architecture, its weights not used
            model.init_weights()
    else:
        from geodino.models import build_model

        model = build_model(arch, patch_size=int(patch_size or 16), in_chans=int(count or 3))
    return GeoDinoTerraTorchBackbone(model.train(), out_indices, return_cls_token)


def datamodule_stats(
    ckpt_path: str, bands: Sequence[Any] | str | None = None, sensor: str | None = None
) -> tuple[list[float], list[float]] | None:
    """(means, stds) in the data's DN units for a TerraTorch datamodule, from the normalisation the export
    records (DN scale folded in), in the order of `bands` (the backbone's `bands`/`model_bands`: the data's
    order) or else of the export's own bands; None when it records none. `sensor` names the sensor the band
    names come from, resolved as `geodino_vit(..., sensor=...)` resolves them (HLS's NIR_NARROW, landsat7's and
    landsat8's SR_Bn need it). Bands the record lacks are refused."""
    from geodino.models.checkpoints import read_backbone_weights
    from geodino.models.checkpoints.bands import band_matches
    from geodino.models.checkpoints.normalization import band_resolver, folded_mean_std, select_normalization

    rec = read_backbone_weights(ckpt_path).normalization
    if not rec:
        return None
    names = _band_names(_text_bands(bands, "bands"))
    if names is not None:
        have = [str(b) for b in rec.get("bands") or []]
        if sensor is not None:  # the way geodino_vit matches the kernels (resolve_bands through that sensor)
            m = band_matches(have, names, sensor=sensor) if have else {}
            lacking = [b for j, b in enumerate(names) if j not in m]
            picked = None if lacking else select_normalization(rec, [have[m[j]] for j in range(len(names))])
        else:
            picked = select_normalization(rec, names, band_resolver(rec))
            lacking = [b for b in names if select_normalization(rec, [b], band_resolver(rec)) is None]
        if picked is None:
            hint = (
                ""
                if sensor is not None
                else "; if the names are a sensor's (HLS's NIR_NARROW, landsat8's SR_B5), pass sensor=NAME as to "
                "geodino_vit"
            )
            raise ConfigError(
                f"the normalisation {ckpt_path} records covers bands {', '.join(have) or '(unnamed)'}, not "
                f"{', '.join(lacking) or ', '.join(names)}; give the datamodule the statistics of those bands "
                f"yourself{hint}"
            )
        rec = picked
    return folded_mean_std(rec)


def register(registry: Any | None = None) -> bool:
    """Register `geodino_vit` in `registry` (default TerraTorch's `TERRATORCH_BACKBONE_REGISTRY`); False when
    TerraTorch is not installed."""
    if registry is None:
        try:
            from terratorch.registry import TERRATORCH_BACKBONE_REGISTRY as registry
        except ModuleNotFoundError as exc:  # not installed; a TerraTorch that fails to import says why
            if (exc.name or "").split(".")[0] != "terratorch":
                raise
            return False
    if "geodino_vit" not in registry:
        registry.register(geodino_vit)
    return True


register()
