"""Band adaptation: a checkpoint's patch embedding for another band set, matched by band names.

`resolve_bands` is the one entry point (used by `load_model`, `geodino convert` and `geodino.backbones`): it
names the file's bands, resolves sensor names (Sentinel-2 B04/B03/B02 are red/green/blue; names that sensors
number differently, such as Landsat 7's and 8's SR_B2, need the sensor) and adapts the kernel only when the names
differ. The rule itself is `adapt_patch_embed` (documented in docs/backbone.md).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from geodino.errors import CheckpointError, ConfigError, plural
from geodino.models.caller import user_stacklevel

if TYPE_CHECKING:
    from geodino.models.checkpoints.files import BackboneWeights

__all__ = [
    "RGB",
    "adapt_patch_embed",
    "adapt_state_bands",
    "match_bands",
    "resolve_bands",
    "same_bands",
    "weights_to_bands",
]

RGB = ("R", "G", "B")
# Names that mean red, green and blue in band lists (case-insensitive); sensor-specific names (B04, SR_B4, ...)
# are resolved through the sensor's `rgb_bands` (`geodino.data.sensors.rgb_names`).
SUBSET_RULES = ("copy", "rescale")
"""`adapt_patch_embed(subset=...)`: a subset of the source bands keeps its trained kernels ("copy", the default) or
scales them by C_src / C_dst ("rescale", the rule before)."""
_RGB_SYNONYMS = {"r": "R", "red": "R", "g": "G", "green": "G", "b": "B", "blue": "B"}
_POSITION = re.compile(r"b\d+")


def band_positions(names: Sequence[str]) -> bool:
    """Whether `names` only say where each band sits in a file (b1..bN: what `geodino data stats` and the archive
    readers call the bands of rasters without band descriptions). Such names are no sensor's band numbers (b4 of a
    Landsat-7 file is its NIR, not Sentinel-2's red B04), so they match only as written."""
    return bool(names) and all(_POSITION.fullmatch(str(n).strip()) for n in names)


def _canon(name: str) -> str:
    return _RGB_SYNONYMS.get(name.strip().lower(), name.strip().upper())


def rgb_canonical(name: str) -> str:
    """A band name as band lists compare it: case-insensitive, with red/green/blue the same as R/G/B."""
    return _canon(name)


def band_matches(
    src_bands: Sequence[str], bands: Sequence[str], *, src_sensor: str | None = None, sensor: Any = None
) -> dict[int, int]:
    """index in `bands` -> index in `src_bands` for the bands that `resolve_bands` matches (through `sensor`, the
    sensor `bands` are named after, when given, else the built-in sensors, `src_sensor`'s numbering deciding):
    what a record's statistics must follow so that they stay with the kernels."""
    if band_positions(src_bands):
        return match_bands(src_bands, bands)
    if sensor is not None:
        _, src_keys, dst_keys = _keys(list(src_bands), bands, sensor, from_file=True)
    else:
        _, src_keys, dst_keys = _keys_without_sensor(list(src_bands), bands, from_file=True, src_sensor=src_sensor)
    return match_bands(src_keys, dst_keys)


def match_bands(src_bands: Sequence[str], dst_bands: Sequence[str]) -> dict[int, int]:
    """dst index -> src index for bands with the same name (case-insensitive; red/green/blue = R/G/B)."""
    src = {_canon(b): i for i, b in enumerate(src_bands)}
    return {j: src[_canon(b)] for j, b in enumerate(dst_bands) if _canon(b) in src}


def check_band_rules(fill: str | None, subset: str, *, allow_none: bool = True) -> None:
    """One line for a `fill` (None, where `allow_none`: refuse unmatched bands) or `subset` rule that is not one of
    the known ones, raised before anything is adapted or warned about (an unmatched band was first announced as
    getting the 'zero' kernel, then the fill was refused)."""
    if not (fill is None and allow_none) and fill not in ("mean", "zeros"):
        raise ConfigError(f"band fill {fill!r} must be 'mean' or 'zeros' (how bands the checkpoint lacks start)")
    if subset not in SUBSET_RULES:
        raise ConfigError(f"band subset rule {subset!r} must be 'copy' or 'rescale'")


def adapt_patch_embed(
    weight: Tensor,
    src_bands: Sequence[str],
    dst_bands: Sequence[str],
    *,
    fill: str = "mean",
    subset: str = "copy",
) -> Tensor:
    """Patch-embedding kernel [D, C_src, p, p] -> [D, C_dst, p, p] for another band set, by band names.

    Rule (documented in docs/backbone.md):
    - a destination band whose name matches a source band (e.g. R/G/B, or red/green/blue) copies its kernel;
    - every other band gets the mean source kernel (`fill="mean"`) or zeros (`fill="zeros"`);
    - the result is scaled so activations keep their magnitude: by C_src / C_dst for `mean` (a uniform input,
      all bands equal, then gives exactly the source model's response when all source bands are matched) and
      by C_src / k for `zeros` with k matched bands (k = C_src: the source model, unchanged, on those bands);
    - except for a subset (every destination band matches a source band, e.g. 4 of a 12-band file's bands):
      `subset="copy"` (default) keeps the copied kernels unscaled, which is exactly the source model with the
      dropped bands at their mean (0 after standardisation: they add nothing), the input the model has seen;
      `subset="rescale"` scales them by C_src / C_dst (fill mean) or C_src / k (fill zeros) as above, the rule
      before (and timm's `adapt_input_conv`), which multiplied the patch embedding by 3 for 4 of 12 bands.
    The bias is unchanged.
    """
    check_band_rules(fill, subset, allow_none=False)
    c_src = weight.shape[1]
    if len(src_bands) != c_src:
        raise ConfigError(
            f"{plural(len(src_bands), 'source band name')} given for a patch embedding with {plural(c_src, 'band')}"
        )
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
    if subset == "copy" and len(set(matches.values())) == len(dst_bands):  # every band matched, none twice
        return out  # a subset (or reordering) of the source bands: the kernels as trained
    scale = c_src / len(dst_bands) if fill == "mean" else c_src / len(matches)
    return out * scale


def adapt_state_bands(
    state: Mapping[str, Tensor],
    dst_bands: Sequence[str],
    *,
    src_bands: Sequence[str] | None = None,
    fill: str = "mean",
    subset: str = "copy",
) -> dict[str, Tensor]:
    """A copy of `state` whose `patch_embed.proj.weight` is adapted to `dst_bands` (see `adapt_patch_embed`;
    `subset`: its rule for a subset of the source bands).

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
    adapted = adapt_patch_embed(w.float(), src_bands, dst_bands, fill=fill, subset=subset)
    out["patch_embed.proj.weight"] = adapted.to(w.dtype)
    return out


def same_bands(a: Sequence[str], b: Sequence[str]) -> bool:
    """True when two band lists name the same bands in the same order (case-insensitive, red = R ...)."""
    return [_canon(x) for x in a] == [_canon(x) for x in b]


def resolve_bands(
    state: Mapping[str, Tensor],
    bands: Sequence[str],
    *,
    src_bands: Sequence[str] | None = None,
    sensor: Any = None,
    fill: str | None = "mean",
    source: str | Path = "<state_dict>",
    check_sensor: bool = True,
    src_sensor: str | None = None,
    subset: str = "copy",
) -> tuple[dict[str, Tensor], list[str]]:
    """`state` with its patch embedding adapted to `bands` (unchanged when they are the file's bands), and the
    band names the result takes (`bands`, sensor names resolved to R/G/B where they are red/green/blue).

    `src_bands` names the file's bands (default R, G, B for a 3-band file). `fill=None` refuses bands that
    match none of the file's instead of giving them the mean kernel. `check_sensor=False` keeps names that are
    not bands of `sensor` instead of refusing them (the data sensor need not name the checkpoint's bands).
    Without `sensor`, names that built-in sensors would match differently (SR_B2 is blue for landsat8, green for
    landsat7) are refused with a ConfigError asking for the sensor, unless `src_sensor` (the sensor the file
    records it was trained on) is one of them: the file's own numbering then decides. `subset`: the rule for a
    subset of the file's bands (`adapt_patch_embed`: "copy", the trained kernels unscaled, or "rescale").
    """
    check_band_rules(fill, subset)
    c = int(state["patch_embed.proj.weight"].shape[1])
    src = list(src_bands) if src_bands else (list(RGB) if c == 3 else None)
    if src is None:
        if len(bands) == c:
            return dict(state), list(bands)
        raise CheckpointError(
            f"checkpoint {source} has {c} input bands and {len(bands)} were requested, and it records no band names "
            "to adapt its patch embedding from; name them with load_backbone(..., src_bands=[...]) or "
            "geodino.models.checkpoints.load_model(..., src_bands=[...]), or request all its bands"
        )
    file_bands = list(src)  # as the file names them, for messages
    positions = bool(src_bands) and band_positions(src)
    if positions:  # b1..bN: positions in the training files, matched as written, never through a sensor
        resolved, src_keys, dst_keys = list(bands), list(src), [str(b) for b in bands]
    elif sensor is not None:
        resolved, src_keys, dst_keys = _keys(src, bands, sensor, from_file=bool(src_bands), check=check_sensor)
    else:
        resolved, src_keys, dst_keys = _keys_without_sensor(
            src, bands, from_file=bool(src_bands), src_sensor=src_sensor
        )
    # a name listed twice says nothing about which input is which; two names of one band (B02 and blue, a stack of
    # two sensors' blue bands) each take its kernel. Two of the file's bands under one name leave its kernel unknown.
    literal = [str(b).strip().lower() for b in bands]
    _refuse_twice(bands, literal, f"the bands requested from checkpoint {source}", "name each band once")
    named = [_canon(k) for k in src_keys]
    _refuse_twice(file_bands, named, f"the bands of checkpoint {source}", "name each of its bands once (src_bands)")
    if same_bands(src_keys, dst_keys):
        return dict(state), resolved
    matched = match_bands(src_keys, dst_keys)
    if positions and not matched:
        raise ConfigError(
            f"checkpoint {source} names its bands only by position ({', '.join(file_bands)}: a sensor YAML from "
            f"`geodino data stats` of rasters without band descriptions), so {', '.join(map(str, bands))} cannot be "
            "matched to them; request its bands by position (e.g. [b3, b2, b1] for bands 3, 2 and 1 of the "
            "files it learned from), or pretrain with a sensor YAML whose bands are named (--band-names)"
        )
    unmatched = [b for j, b in enumerate(bands) if j not in matched]
    if unmatched and fill is None:
        hint = (
            ""
            if sensor or matched
            else "; or name their sensor so the names resolve (sensor='sentinel2_l2a' in Python, --sensor on the "
            "command line)"
        )
        one = len(unmatched) == 1
        raise ConfigError(
            f"{plural(len(unmatched), 'requested band')} ({', '.join(unmatched)}) {'matches' if one else 'match'} "
            f"no band of checkpoint {source} ({', '.join(file_bands)}); give {'it' if one else 'them'} the mean "
            "or zero kernel (fill='mean' / fill='zeros' in Python and TerraTorch's backbone_fill, --fill mean / "
            f"--fill zeros on the command line){hint}"
        )
    if unmatched:
        # said out loud: a typo or another naming convention (NIR_NARROW for nir) would otherwise silently
        # replace a trained kernel by the mean one
        one = len(unmatched) == 1
        fate = (
            f"it gets the {fill} kernel; name it as the checkpoint does to keep its trained kernel"
            if one
            else f"they get the {fill} kernel; name them as the checkpoint does to keep their trained kernels"
        )
        warnings.warn(
            f"{plural(len(unmatched), 'band')} ({', '.join(unmatched)}) {'matches' if one else 'match'} "
            f"no band of checkpoint {source} ({', '.join(file_bands)}): {fate}",
            stacklevel=user_stacklevel(),
        )
    return adapt_state_bands(state, dst_keys, src_bands=src_keys, fill=fill or "mean", subset=subset), resolved


def weights_to_bands(
    weights: BackboneWeights,
    bands: Sequence[str],
    *,
    src_bands: Sequence[str] | None = None,
    sensor: Any = None,
    fill: str | None = "mean",
    subset: str = "copy",
    source: str | Path | None = None,
) -> dict[str, Tensor]:
    """The state of a read file (`read_backbone_weights`) with its patch embedding adapted to `bands`.

    What the file records fills in what the caller leaves out: its bands are `src_bands`, else those its
    normalisation record names; the sensor it was trained on (record, else config) decides names that sensors
    number differently (`resolve_bands`' `src_sensor`). One rule for loading (`load_model`) and converting
    (`geodino convert`) a file with other bands. `source` names the file in messages (default: `weights.source`).
    """
    record = weights.normalization or {}
    state, _ = resolve_bands(
        weights.state,
        bands,
        src_bands=src_bands or record.get("bands"),
        sensor=sensor,
        fill=fill,
        source=weights.source if source is None else source,
        src_sensor=record.get("sensor") or (weights.config or {}).get("sensor"),
        subset=subset,
    )
    return state


def _refuse_twice(names: Sequence[str], keys: Sequence[str], what: str, fix: str) -> None:
    """One line naming the first two of `names` whose `keys` (how they are compared) are equal."""
    seen: dict[str, str] = {}
    for name, k in zip(names, keys, strict=True):
        if k in seen:
            raise ConfigError(
                f"{what} ({', '.join(map(str, names))}) name one band twice ({seen[k]} and {name}); {fix}"
            )
        seen[k] = str(name)


def _keys(
    src: list[str], bands: Sequence[str], sensor: Any, *, from_file: bool, check: bool = False
) -> tuple[list[str], list[str], list[str]]:
    """Through one sensor: the names the result takes (red, green, blue renamed R, G, B), and both band lists with
    the sensor's aliases resolved for matching (nir and B08 are one Sentinel-2 band). `from_file`: `src` are the
    file's own names (else the default R, G, B)."""
    from geodino.data.sensors import get_sensor, rgb_names

    s = get_sensor(sensor)
    resolved = rgb_names(bands, s, check=check)
    named = rgb_names(src, s, check=False) if from_file else list(src)

    def one(b: str) -> str:
        return b if _canon(b) in RGB else (s.resolve_band(b, strict=False) or b)

    return resolved, [one(b) for b in named], [one(b) for b in resolved]


def _keys_without_sensor(
    src: list[str], bands: Sequence[str], *, from_file: bool, src_sensor: str | None = None
) -> tuple[list[str], list[str], list[str]]:
    """`_keys` with no sensor given: through the built-in sensors that know every name of both lists that any of
    them knows (R, G, B and red, green, blue mean the same everywhere and do not count). When those sensors would
    match the bands differently (SR_B2 is blue for landsat8, green for landsat7), a ConfigError asks for the
    sensor instead of picking one numbering. With none (the file's and the requested names are of different
    sensors), each list resolves on its own (`rgb_names`: Sentinel-2 B04 and red both match R) and aliases stay."""
    from geodino.data.sensors import ambiguous_bands_error, rgb_names, sensors_knowing

    named = [*(src if from_file else ()), *bands]
    candidates = sensors_knowing([b for b in named if _canon(b) not in RGB])
    if not candidates:
        resolved = rgb_names(bands)
        return resolved, rgb_names(src) if from_file else list(src), resolved
    if src_sensor and from_file and str(src_sensor).lower() in candidates:  # the file's own sensor decides
        candidates = [str(src_sensor).lower()]
    plans = {n: _keys(src, bands, n, from_file=from_file) for n in candidates}
    matchings = {tuple(sorted(match_bands(a, b).items())) for _, a, b in plans.values()}
    if len(matchings) > 1:
        raise ambiguous_bands_error([b for b in named if _canon(b) not in RGB], candidates)
    first = plans[candidates[0]]
    # names that match the same way everywhere but read differently (SR_B4 is R for landsat8, NIR for landsat7)
    same = all(p[0] == first[0] for p in plans.values())
    return (first[0] if same else list(bands)), first[1], first[2]
