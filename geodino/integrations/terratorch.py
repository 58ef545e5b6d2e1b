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

Any band count: `bands` names the input bands (TerraTorch's band enums or strings); when they differ from the bands
the file records (or R, G, B for 3-band files), the patch embedding is adapted by name
(`geodino.models.checkpoints.resolve_bands`: matching bands keep their kernel, others get the mean kernel).
`model_bands` (the input bands as TerraTorch's torchgeo ViT/ResNet backbones name them, `backbone_model_bands` in a
config) is taken as `bands`; both given and different is refused. `pretrained_bands` (TerraTorch's name for the
bands a checkpoint was trained on, `backbone_pretrained_bands`; `src_bands` is geodino's) names the file's bands
when it records none (a plain or official-layout state_dict: R, G, B assumed for 3 bands); one that contradicts the
file's record, or has another count than its input channels, is refused. A plain count (`bands=6` or `in_chans=6`)
works only when the file has that many bands or when `bands` names are given. `ckpt_path=None` gives a random `arch`
(for tests and from-scratch training; `pretrained=True` without it is refused). Any other option (e.g. TerraTorch's
`num_frames`) is dropped with one warning naming it, so a setting meant for another backbone does not pass
unnoticed.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from geodino.errors import CheckpointError, ConfigError, plural
from geodino.models.caller import user_stacklevel

if TYPE_CHECKING:
    from geodino.models.vit import DinoVisionTransformer

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


def _merge_model_bands(bands: Any, model_bands: Any, key: str = "bands", other: str = "model_bands") -> Any:
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
            f"geodino_vit got {key}={_describe(bands)} and {other}={_describe(model_bands)}, which differ; "
            f"give one of them (backbone_{key} or backbone_{other} in a TerraTorch config)"
        )
    return model_bands if b is not None else bands


def _source_bands(path: str, channels: int, recorded: Any, given: Any) -> Any:
    """The checkpoint's own bands: those it records, else `pretrained_bands`/`src_bands` (TerraTorch's and geodino's
    name for them). Given for a file that records others, or naming another count than its input channels, is
    refused: either could be the one the kernels follow."""
    from geodino.models.checkpoints.bands import same_bands

    names = _band_names(given)
    if given is None:
        return recorded
    if names is None:
        raise ConfigError(
            f"geodino_vit got pretrained_bands={given!r}: name the bands of {path} (backbone_pretrained_bands: "
            "[BLUE, GREEN, RED, ...]), a count cannot say which kernel is which"
        )
    if len(names) != channels:
        raise ConfigError(
            f"geodino_vit got {plural(len(names), 'pretrained band')} ({', '.join(names)}) but {path} has "
            f"{channels} input bands; name each of its bands in order"
        )
    if recorded and not same_bands([str(b) for b in recorded], names):
        raise ConfigError(
            f"{path} records bands {', '.join(map(str, recorded))}, not pretrained_bands {', '.join(names)}; drop "
            "backbone_pretrained_bands (the file's record names its kernels)"
        )
    return names


def _refuse_repeats(names: list[str] | None, key: str, who: str = "geodino_vit") -> None:
    """One line naming a band listed twice in `key` (two inputs for one kernel, or two kernels under one name)."""
    from geodino.data.band_args import repeated_band

    twice = repeated_band(names or [])
    if twice:
        where = f" (backbone_{key} in a TerraTorch config)" if who == "geodino_vit" else ""
        raise ConfigError(
            f"{who} got {key}=[{', '.join(names or [])}], which lists {twice} twice; name each band once{where}"
        )


def _check_rules(fill: str | None, subset: str) -> None:
    """`fill` and `subset` checked before the file is read, naming TerraTorch's keys: a bad value was refused only
    after the unmatched bands had been announced as getting its kernel ("the bogus kernel")."""
    from geodino.models.checkpoints.bands import SUBSET_RULES

    if fill is not None and fill not in ("mean", "zeros"):
        raise ConfigError(
            f"geodino_vit got fill={fill!r}; use 'mean' or 'zeros' (backbone_fill in a TerraTorch config: how bands "
            "the checkpoint lacks start)"
        )
    if subset not in SUBSET_RULES:
        raise ConfigError(
            f"geodino_vit got subset={subset!r}; use 'copy' or 'rescale' (backbone_subset in a TerraTorch config: "
            "how a subset of the checkpoint's bands keeps its kernels)"
        )


def _warn_dropped(kwargs: dict[str, Any]) -> None:
    """One warning naming the options `geodino_vit` does not use (a setting meant for another backbone)."""
    dropped = sorted(set(kwargs) - _FACTORY_OPTIONS)
    if dropped:
        warnings.warn(
            f"geodino_vit ignores {plural(len(dropped), 'option')} {', '.join(dropped)}: it takes ckpt_path, bands "
            "(or model_bands), pretrained_bands (or src_bands), sensor, out_indices, return_cls_token, pretrained, "
            "arch, patch_size, in_chans, fill and subset",
            stacklevel=user_stacklevel(),
        )


def _out_indices(out_indices: Sequence[int] | int | str | None, n_blocks: int) -> list[int]:
    """Block indices for `out_indices` (TerraTorch's backbone_out_indices), all blocks when None. Errors name
    out_indices (layer_indices speaks of `layers`, geodino's key); a block listed twice (1 and 1, or 3 and -1 of 4)
    is refused: one feature per block comes back, so TerraTorch's SelectIndices positions would be off by it."""
    from geodino.backbones import layer_indices
    from geodino.user_keys import keys_named_by

    if out_indices is None:
        return list(range(n_blocks))
    try:
        with keys_named_by(lambda key: "out_indices" if key == "layers" else key):
            out = layer_indices(out_indices, n_blocks)
    except ConfigError as exc:
        raise ConfigError(f"geodino_vit {exc}") from None
    if not isinstance(out_indices, (int, str)) and len(out) != len(list(out_indices)):
        raise ConfigError(
            f"geodino_vit out_indices={list(out_indices)} name a block twice (blocks {out} of {n_blocks}); list each "
            "block once (backbone_out_indices), as one feature per block is returned"
        )
    return out


class GeoDinoTerraTorchBackbone(nn.Module):
    """A trainable geodino ViT returning token sequences of chosen blocks, as TerraTorch's ViT backbones do."""

    def __init__(
        self, model: DinoVisionTransformer, out_indices: Sequence[int] | int | None, return_cls_token: bool
    ) -> None:
        super().__init__()
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
        self.out_indices = _out_indices(out_indices, n)
        # blocks after the last taken one run (official get_intermediate_layers) but feed no output: frozen, for the
        # same DDP reason (out_indices [2, 5, 8, 11] on a 24-block ViT-L left blocks 12-23 without gradients)
        for block in list(model.blocks)[max(self.out_indices) + 1 :]:
            block.requires_grad_(False)
        self.return_cls_token = return_cls_token
        self.out_channels = [int(model.embed_dim)] * len(self.out_indices)
        self.patch_size = int(model.patch_size)
        self.in_chans = int(model.in_chans)

    def freeze(self) -> None:
        """TerraTorch's `freeze_backbone: true` (its models call `encoder.freeze()`): parameters frozen and the ViT
        kept in eval mode through later `.train()` calls, as the official frozen evaluations run it. In train mode
        the released models' RoPE box jittering (rescale_coords=2) gave a frozen backbone's tokens a random
        coordinate scale at every training step, and none at validation and inference."""
        self.requires_grad_(False)
        self._frozen = True
        self.model.eval()

    def train(self, mode: bool = True) -> GeoDinoTerraTorchBackbone:
        """As nn.Module.train, but a frozen backbone (`freeze`) stays in eval mode."""
        super().train(mode)
        if getattr(self, "_frozen", False):
            self.model.eval()
        return self

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


def _no_key_errors(build: Callable[..., GeoDinoTerraTorchBackbone]) -> Callable[..., GeoDinoTerraTorchBackbone]:
    """`build` with a KeyError from inside it raised as a ConfigError of one line: TerraTorch's BACKBONE_REGISTRY
    takes a KeyError for "no such model in this source" (`suppress(KeyError)`, then the next source), so the cause
    was lost ("Could not instantiate model geodino_vit not from any source"), or, under the terratorch_ prefix,
    shown as a quoted repr. The KeyError stays chained (`__cause__`) for its traceback."""

    @functools.wraps(build)
    def guarded(*args: Any, **kwargs: Any) -> GeoDinoTerraTorchBackbone:
        try:
            return build(*args, **kwargs)
        except KeyError as exc:
            what = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else repr(exc)
            raise ConfigError(f"geodino_vit could not be built: KeyError {what!r} (see the chained traceback)") from exc

    return guarded


@_no_key_errors
def geodino_vit(
    ckpt_path: str | None = None,
    bands: Sequence[Any] | int | str | None = None,
    out_indices: Sequence[int] | int | None = None,
    return_cls_token: bool = True,
    pretrained: bool | None = None,
    arch: str = "vit_small",
    patch_size: int | None = None,
    in_chans: int | None = None,
    fill: str = "mean",
    model_bands: Sequence[Any] | int | str | None = None,
    sensor: str | None = None,
    subset: str = "copy",
    pretrained_bands: Sequence[Any] | str | None = None,
    src_bands: Sequence[Any] | str | None = None,
    **kwargs: Any,
) -> GeoDinoTerraTorchBackbone:
    """TerraTorch backbone constructor: a geodino export, checkpoint, HF or timm folder (`ckpt_path`) with its
    patch embedding adapted to `bands`; with `pretrained=False` the same architecture at the official random
    initialisation (TerraTorch's deploy config sets `backbone_pretrained: false` and then loads the fine-tuned
    weights into it); a random `arch` (patch 16 unless `patch_size`) without `ckpt_path`, where `pretrained=True`
    is refused (no weights to load: it trained from scratch without a word). A `patch_size` that
    differs from the checkpoint's is refused (TerraTorch pads inputs to it).
    `model_bands` (TerraTorch's name for the input bands) is the same as `bands`; `sensor` (backbone_sensor)
    names the sensor the band names come from (landsat7 and landsat8 number SR_Bn differently); other unknown
    options are dropped with a warning naming them. `subset` (backbone_subset): the rule for a subset of the
    checkpoint's bands, "copy" (the trained kernels unscaled) or "rescale" (scaled by C_src / C_dst, the rule
    before; `geodino.models.checkpoints.adapt_patch_embed`). `pretrained_bands` (backbone_pretrained_bands, as
    TerraTorch's Prithvi and torchgeo backbones call it) or `src_bands` names the checkpoint's bands where the file
    records none."""
    _warn_dropped(kwargs)
    _check_rules(fill, subset)
    if ckpt_path is not None and not str(ckpt_path).strip():  # a template's blank or an unset ${VAR}: not "none"
        raise ConfigError(
            f"geodino_vit got an empty ckpt_path ({ckpt_path!r}); set backbone_ckpt_path to a geodino export or "
            f"DINOv3 file, or leave it out (null) for a random {arch}"
        )
    given_src = _merge_model_bands(
        _text_bands(src_bands, "src_bands"),
        _text_bands(pretrained_bands, "pretrained_bands"),
        "src_bands",
        "pretrained_bands",
    )
    bands = _merge_model_bands(_text_bands(bands, "bands"), _text_bands(model_bands, "model_bands"))
    names = _band_names(bands)
    sensor = sensor or None  # backbone_sensor: "" (a template's blank) names none
    _refuse_repeats(names, "bands")
    _refuse_repeats(_band_names(given_src), "pretrained_bands")
    if sensor is not None and not names:
        raise ConfigError(
            f"geodino_vit got sensor={sensor!r} but no band names: the sensor only says which sensor backbone_bands "
            "are named after; add backbone_bands: [...] (the data's bands, in order) or drop backbone_sensor"
        )
    if names and in_chans is not None and int(in_chans) != len(names):
        raise ConfigError(
            f"geodino_vit got in_chans={in_chans} and {len(names)} band names ({', '.join(names)}); drop in_chans "
            "(the names decide the band count) or name every band"
        )
    count = len(names) if names else (bands if isinstance(bands, int) else in_chans)
    if ckpt_path:
        from geodino.models.checkpoints import load_model, read_backbone_weights

        try:
            weights = read_backbone_weights(ckpt_path)
        except CheckpointError as exc:  # the deploy config (backbone_pretrained: false) keeps the training path
            if pretrained is None or pretrained:
                raise
            raise CheckpointError(
                f"{exc} (backbone_pretrained: false still reads backbone_ckpt_path for the backbone's architecture: "
                "copy the export beside the fine-tuned checkpoint and point backbone_ckpt_path at it)"
            ) from None
        c = int(weights.state["patch_embed.proj.weight"].shape[1])
        if count is not None and count != c and not names:
            raise ConfigError(
                f"backbone {ckpt_path} has {c} input bands but {count} were requested; name them "
                "(backbone_bands: [BLUE, GREEN, ...]) so the patch embedding can be adapted by name"
            )
        recorded = (weights.normalization or {}).get("bands") or (weights.config or {}).get("bands")
        src = _source_bands(str(ckpt_path), c, recorded, given_src)
        if names and not src and c != 3 and len(names) != c:  # no names to adapt from (3 bands: R, G, B assumed)
            raise ConfigError(
                f"backbone {ckpt_path} has {c} input bands and records no band names, so {len(names)} bands cannot "
                "be matched to its kernels; name its bands with backbone_pretrained_bands: [...] (pretrained_bands=)"
            )
        model = load_model(weights, bands=names, src_bands=src, fill=fill, sensor=sensor, subset=subset)  # read once
        if patch_size is not None and int(patch_size) != int(model.patch_size):
            raise ConfigError(
                f"geodino_vit got patch_size={patch_size} but {ckpt_path} has patch size {model.patch_size}; drop "
                "backbone_patch_size (TerraTorch pads inputs to it, so a different value fails on the first batch)"
            )
        if pretrained is not None and not pretrained:  # the checkpoint's architecture, its weights not used
            model.init_weights()
    else:
        if pretrained:  # backbone_pretrained: true with no file to load: it trained from scratch without a word
            raise ConfigError(
                "geodino_vit got pretrained=True but no ckpt_path, so there are no weights to load; set "
                "backbone_ckpt_path to a geodino export or DINOv3 file, or backbone_pretrained: false for a random "
                f"{arch}"
            )
        unused = [k for k, v in (("pretrained_bands", given_src), ("sensor", sensor)) if v is not None]
        if unused:  # nothing to name or match without a checkpoint
            warnings.warn(
                f"geodino_vit ignores {' and '.join(unused)} without ckpt_path: a random model has no trained kernels",
                stacklevel=user_stacklevel(),
            )
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

    given = _text_bands(bands, "bands")
    names = _band_names(given)
    sensor = sensor or None
    _refuse_repeats(names, "bands", "datamodule_stats")
    if sensor is not None and not names:
        raise ConfigError(
            f"datamodule_stats got sensor={sensor!r} but no band names: the sensor only says which sensor the bands "
            "are named after; pass bands=[...] (the data's bands, in order) or drop sensor"
        )
    rec = read_backbone_weights(ckpt_path).normalization
    if not rec:
        return None
    n = len(rec["mean"])
    if isinstance(given, int) and given != n:  # a count can only mean the export's own bands, in its order
        raise ConfigError(
            f"datamodule_stats got bands={given} but the normalisation {ckpt_path} records covers {n} bands "
            f"({', '.join(map(str, rec.get('bands') or [])) or 'unnamed'}); name the data's bands in order "
            "(bands=[...], as passed to geodino_vit) or drop bands for the export's own"
        )
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
    mean, std = folded_mean_std(rec)
    # the division's float noise rounded away (0.3 / 1e-4 gave 2999.9999999999995 for a datamodule's config)
    return [float(f"{v:.12g}") for v in mean], [float(f"{v:.12g}") for v in std]


def register(registry: Any = None) -> bool:
    """Register `geodino_vit` in `registry` (default TerraTorch's `TERRATORCH_BACKBONE_REGISTRY`); False when
    TerraTorch is not installed."""
    if registry is None:
        try:
            from terratorch.registry import TERRATORCH_BACKBONE_REGISTRY
        except ModuleNotFoundError as exc:  # not installed; a TerraTorch that fails to import says why
            if (exc.name or "").split(".")[0] != "terratorch":
                raise
            return False
        registry = TERRATORCH_BACKBONE_REGISTRY
    if "geodino_vit" not in registry:
        registry.register(geodino_vit)
    return True


register()
