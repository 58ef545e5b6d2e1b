"""Which flags each form of `geodino embed` reads, and the one-line refusals of the others (`check_flags`), or of
a product's `key=value` item or extra file (`check_product_items`). One parser holds every form's flags, so each
form ignored the others' silently; `commands.py` calls these and re-exports the names.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from geodino.data.band_args import BAND_NUMBERS_HINT
from geodino.errors import ConfigError, plural

PRODUCTS = ("pca", "cluster", "similar", "zonal", "classify", "change")

EMBED_FLAGS = (
    "backbone out tile overlap blend margin batch_size layers layer_mode l2_normalize dtype chunk upsample sensor "
    "scale bands nodata variable time bbox bbox_crs window asset asset_bands allow_no_crs overwrite resume amp device "
    "workers world_size rank threads progress on_error"
).split()


IMAGES_FLAGS = ("pool", "image_size", "on_error", "offset", "file_scale")
# the embedding flags a product takes too: every product writes --out and may --overwrite it; the others choose how
# features are computed (or which area), and a product reads features already computed, so it refuses them
PRODUCT_SHARED = ("out", "overwrite")
# each product's own flags: the keyword-only parameters of its function, passed on by name (`options_for`)
PRODUCT_OPTIONS = {
    "pca": ("png", "sample", "seed"),
    "cluster": ("png", "k", "sample", "seed"),
    "similar": ("png", "point", "point_crs", "polygon", "layer"),
    "zonal": ("png", "layer", "all_touched"),
    "classify": tuple("png column layer model save_model test method neighbors folds cv_gap max_cells seed".split()),
    "change": ("png", "threshold", "mask", "resample"),
}
PRODUCT_FLAGS = tuple(dict.fromkeys(n for names in PRODUCT_OPTIONS.values() for n in names))
# what each product takes before its flags (more, or a key=value override, was ignored silently)
PRODUCT_ITEMS = {"zonal": ("FEATURES", "POLYGONS"), "classify": ("FEATURES", "LABELS"), "change": ("A", "B")}
_OVERRIDE = re.compile(r"[A-Za-z_][\w.-]*=")  # a key=value item (embed's config overrides), not a file
RASTER_FLAGS = (
    "tile overlap blend margin layer_mode dtype chunk upsample sensor nodata variable time bbox bbox_crs window asset "
    "asset_bands allow_no_crs resume workers world_size rank config"
).split()
# flags whose name is not their dest with dashes
FLAG_NAMES = {"l2_normalize": "--l2", "amp": "--bf16", "progress": "--no-progress", "file_scale": "--no-file-scale"}


def flag_name(dest: str) -> str:
    """The command-line spelling of an argparse dest (`l2_normalize` -> `--l2`)."""
    return FLAG_NAMES.get(dest) or "--" + dest.replace("_", "-")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def accepted_flags(command: str) -> set[str]:
    """The flags (argparse dests) that `command` reads: "embed" (a raster, scenes, STAC), "images" or a product."""
    if command in PRODUCTS:
        return {*PRODUCT_SHARED, *PRODUCT_OPTIONS[command]}
    if command == "images":
        return {*EMBED_FLAGS, *IMAGES_FLAGS} - set(RASTER_FLAGS)
    return {*EMBED_FLAGS, "config"}


def check_flags(args: argparse.Namespace, command: str) -> None:
    """One rule for every form of `geodino embed` (`accepted_flags`): a flag given to a form that does not read it
    is one ConfigError line naming the flag and the form it belongs to. One parser holds every form's flags, so
    each form ignored the others' silently: `embed pca F --bbox ...` mapped the whole raster, `embed IN --k 8 ...`
    and `embed pca F --k 8 ...` did nothing with --k."""
    if command == "similar":  # the bare --point-crs reaches similarity_map as None: checked here
        from geodino.embed.products import check_query_crs

        check_query_crs(getattr(args, "point_crs", None), getattr(args, "polygon", None))
    accepted = accepted_flags(command)
    given = [n for n in (*IMAGES_FLAGS, *EMBED_FLAGS, "config", *PRODUCT_FLAGS) if getattr(args, n, None) is not None]
    given = [n for n in dict.fromkeys(given) if n not in accepted]
    if not given:
        return
    name = given[0]
    if name == "file_scale" and command == "embed":  # a raster's switch is its config key
        raise ConfigError(
            "--no-file-scale applies to geodino embed images DIR; geodino embed INPUT takes the setting "
            "file_scale=false (an override after the input) to leave a raster's own GDAL scale/offset unread"
        )
    if name in IMAGES_FLAGS and name not in EMBED_FLAGS:  # --on-error: embed images and many scenes
        raise ConfigError(f"{flag_name(name)} applies to geodino embed images DIR only; drop it")
    if command == "images" and name in RASTER_FLAGS:
        if name == "sensor":  # the data's sensor: what a backbone spec option gives embed images
            raise ConfigError(
                f"--sensor does not apply to geodino embed images; pass the sensor with the backbone "
                f"(--backbone 'SPEC?sensor={args.sensor}': its DN scale and statistics) or --scale/--offset"
            )
        raise ConfigError(
            f"{flag_name(name)} does not apply to geodino embed images (a feature-raster option); drop it"
        )
    if name in (*EMBED_FLAGS, "config"):  # a product given embedding flags
        _embedding_flags(command, [n for n in given if n not in PRODUCT_FLAGS])
    owned = [n for n in given if n in PRODUCT_FLAGS]  # flags of other products: say whose they are
    owners = {n: [p for p in PRODUCTS if n in PRODUCT_OPTIONS[p]] for n in owned}
    named = f"{flag_name(name)} applies to geodino embed {_and(owners[name])}"
    if len(owned) > 1:
        named = (
            _and([f"{flag_name(n)} ({', '.join(owners[n])})" for n in owned]) + " apply to those geodino embed products"
        )
    target = "geodino embed itself (which computes features)" if command == "embed" else f"geodino embed {command}"
    if command in PRODUCTS:
        target += f" (its flags: {', '.join(flag_name(n) for n in (*PRODUCT_OPTIONS[command], *PRODUCT_SHARED))})"
    raise ConfigError(f"{named}, not to {target}; drop {'it' if len(owned) == 1 else 'them'}")


def _embedding_flags(product: str, given: list[str]) -> None:
    """The line for embedding flags given to a product (`geodino embed pca FEATURES --bbox ...`): the products read
    a feature raster as it is, so `--bbox`, `--tile`, `--backbone`, `--config` ... were ignored silently (a
    study-area map came out for the whole raster)."""
    if given[0] in ("bbox", "bbox_crs", "window"):
        flag = flag_name(given[0])
        raise ConfigError(
            f"{flag} applies to geodino embed itself (the area whose features are computed), not to geodino embed "
            f"{product}, which works on the whole feature raster it is given; for a {product} product of a study "
            f"area, embed that area first (geodino embed INPUT -b SPEC {flag.removesuffix('-crs')} ... --out "
            f"AREA.tif), then run geodino embed {product} on AREA.tif"
        )
    flags = [flag_name(n) for n in given]
    what = "an embed config file" if given == ["config"] else "how features are computed"
    raise ConfigError(
        f"{_and(flags)} {'applies' if len(flags) == 1 else 'apply'} to geodino embed itself ({what}), not to geodino "
        f"embed {product}, which works on a feature raster already computed; drop {'it' if len(flags) == 1 else 'them'}"
    )


def check_product_items(product: str, items: list[str]) -> None:
    """A product's positionals are its files (`PRODUCT_ITEMS`): a `key=value` item (geodino embed's own config
    overrides) or a file more than it takes is one ConfigError line (both were ignored silently), and so is one less."""
    takes = PRODUCT_ITEMS.get(product, ("FEATURES",))
    named = _and(list(takes))
    for item in items:
        if _OVERRIDE.match(item) and not os.path.exists(item):
            key, value = item.split("=", 1)
            if key.replace("-", "_") in PRODUCT_OPTIONS[product]:
                flag = f"{flag_name(key.replace('-', '_'))} {value}"
                raise ConfigError(f"{item}: geodino embed {product} takes its options as flags; pass {flag}")
            raise ConfigError(
                f"{item}: key=value overrides set geodino embed itself (how features are computed), not geodino embed "
                f"{product}, which takes {named} and flags; drop it"
            )
    if len(items) > len(takes):
        raise ConfigError(f"geodino embed {product} takes {named}; unexpected {' '.join(items[len(takes) :])}")
    if len(items) < len(takes) and product != "classify":  # classify FEATURES --model M: no LABELS
        raise ConfigError(f"geodino embed {product} needs {named}: geodino embed {product} {' '.join(takes)} --out ...")


def check_one_input_flags(path: str, cfg: Any) -> None:
    """Flags that one raster cannot use, refused in one line naming the value: `--asset`/`--asset-bands` (STAC
    input; many scenes already refused them) and `--variable` of a GeoTIFF/VRT (a datacube's; `--time` was refused
    there already). Both were ignored silently: `geodino embed in.tif --asset nir08` embedded every band of in.tif."""

    from geodino.data.cube_open import is_cube_store

    given = [f"--asset {cfg.asset}"] if cfg.asset else []
    given += [f"--asset-bands {','.join(map(str, cfg.asset_bands))}"] if cfg.asset_bands else []
    if given:
        raise ConfigError(
            f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to STAC input (a .json ItemCollection, "
            f"catalog or item), but input {path} is one raster; drop {'them' if len(given) > 1 else 'it'} (its bands: "
            "--bands)"
        )
    cube = is_cube_store(path)
    if cfg.variable and not cube:
        raise ConfigError(
            f"--variable {cfg.variable} (variable=) chooses a variable of a datacube (Zarr, NetCDF), but input {path} "
            "is a raster; drop it"
        )


NUMBER_LIST_FLAGS = ("--point", "--bbox", "--layers")
"""Flags whose value is a comma-separated list of numbers, often negative (western longitudes, southern latitudes,
blocks counted from the end)."""
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BAND_WORD = r"(\d+|[A-Za-z_][\w-]*)"  # a band number (4) or name (B04, SR_B2, red, nir08): no dot, slash, glob, =
_BAND_LIST = re.compile(rf"{_BAND_WORD}(,{_BAND_WORD})*,?")
NOT_BANDS = (*PRODUCTS, "images")  # words that start another form of the command, never band names


def _negative_list(token: str) -> bool:
    """Whether `token` is a comma-separated list of numbers starting with a minus (`-119.72,37.11`), which argparse
    takes for an option (its negative-number rule knows single numbers only)."""
    parts = [p.strip() for p in token.split(",") if p.strip()]  # `-2,`: joined, for the flag's reader to judge
    return token.startswith("-") and "," in token and bool(parts) and all(_NUMBER.fullmatch(p) for p in parts)


def _join_values(args: list[str], flags: tuple[str, ...], take: Callable[[str, list[str]], str | None]) -> list[str]:
    """The one argv walker of `join_negative_lists` and `join_band_numbers`: after each of `flags`, the tokens
    `take(token, taken so far)` accepts (it returns the text to join, or None to stop) become that flag's one value,
    `FLAG=V1,V2`; a flag with none is left as it is, and nothing after `--` is touched."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return out + list(args[i:])
        out.append(a)
        i += 1
        if a not in flags:
            continue
        taken: list[str] = []
        while i < len(args) and (value := take(args[i], taken)) is not None:
            taken.append(value)
            i += 1
        if taken:
            out[-1] = f"{a}={','.join(taken)}"
    return out


def join_negative_lists(args: list[str]) -> list[str]:
    """`--point -119.72,37.11` as `--point=-119.72,37.11` (and `--bbox -120.5,37,-119.5,38`, `--layers -2,-1`):
    argparse read the value as an unknown option and said "expected at least one argument". Only comma lists are
    joined: a single negative number (`--point -119.72 37.11`) is already a value to argparse. Nothing after `--`
    is touched."""
    return _join_values(args, NUMBER_LIST_FLAGS, lambda t, taken: t if not taken and _negative_list(t) else None)


def join_band_numbers(args: list[str]) -> list[str]:
    """`--bands 4 3 2` as `--bands=4,3,2`, the spelling every other command's `--bands` takes (names there: B04 B03
    B02): embed's --bands took one value, so 3 and 2 became more input scenes ("--out names one raster, but the
    input has many scenes"). Names join too (`--bands red green blue`, `--bands B04 B03 B02`): the tokens right
    after --bands of the first one's kind (whole numbers, or plain names: no dot, slash or glob, so `scene.tif` and
    `'*.tif'` stay inputs) that are not existing files, a product name or `images`; a token that mixes both
    (`4,red`) is taken alone, for `band_list` to refuse."""

    def kind(token: str) -> str:
        parts = token.strip(",").split(",")
        return "numbers" if all(p.isdigit() for p in parts) else "names" if not any(p.isdigit() for p in parts) else ""

    def take(token: str, taken: list[str]) -> str | None:
        if token in NOT_BANDS or not _BAND_LIST.fullmatch(token) or os.path.exists(token):
            return None
        if taken and (not kind(taken[0]) or kind(token) != kind(taken[0])):
            return None
        return token.strip(",")

    return _join_values(args, ("--bands",), take)


def band_numbers(text: str) -> list[int]:
    """1-based band numbers (4,3,2) as text: a name is a one-line argparse error that says where names go."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of band numbers: {BAND_NUMBERS_HINT}") from None


def asset_bands_flag(text: str) -> list[str]:
    """The `type` of `--asset-bands`: names or 1-based numbers apart by commas (`stac.asset_band_list`); "red nir"
    (one band 'red nir' that no STAC item has, refused only once the item was read) is one line (exit 2)."""
    from geodino.embed.stac import asset_band_list

    try:
        return asset_band_list(text, "--asset-bands") or []
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def asset_bands_override(overrides: list[str]) -> None:
    """Refuse an `asset_bands=red nir` override in one line: the config reads it as the list ['red nir'], one band
    no item has; a bracket list (`asset_bands=['red nir']`) keeps a name with a space."""
    from geodino.embed.stac import asset_band_list

    for item in overrides:
        key, _, value = item.partition("=")
        text = value.strip().strip("'\"")
        if key.strip() == "asset_bands" and not text.startswith("["):
            asset_band_list(text, "asset_bands")


def layers_text(value: list[Any] | dict[str, Any], where: str) -> str:
    """A YAML list of block indices given to embed's text key `layers` (`[4, 8, 11]`, `['-1']`) as the text `--layers`
    takes (`4,8,11`); anything else (no items, a name, 1.5, true, a mapping, a nested list) is one ConfigError line
    naming `where` (an override or a config file) and the accepted forms."""
    from geodino.embed.backbone import EMBED_LAYERS_USAGE

    parts = [str(p).strip() for p in value] if isinstance(value, list) else []
    if not parts or not all(re.fullmatch(r"[+-]?\d+", p) for p in parts):
        override = where.startswith("override")
        shown, example = ("", "layers=[4,8,11]") if override else (f"layers: {value!r} in ", "layers: [4, 8, 11]")
        raise ConfigError(
            f"{shown}{where} is not a list of block indices; {EMBED_LAYERS_USAGE}, or a list of them: {example}"
        )
    return ",".join(parts)


def band_list(text: str) -> list[int] | list[str]:
    """The `type` of embed's `--bands`: 1-based band numbers (4,3,2), as before, or band names (red,nir; B04,B03),
    which `geodino embed` turns into the numbers of each input's bands (`resolve_band_names`). Numbers and names
    mixed (4,red) or a name given twice are one line (exit 2): which bands were meant cannot be told."""
    parts = [x.strip() for x in text.split(",") if x.strip()]
    numbers = [p for p in parts if _NUMBER.fullmatch(p)]
    if numbers and len(numbers) == len(parts):
        if all(re.fullmatch(r"[+-]?\d+", p) for p in parts):
            return [int(p) for p in parts]
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of band numbers: they are whole 1-based numbers of the input's bands (4,3,2); "
            "band names (red,green,blue) are taken too"
        )
    if numbers:
        raise argparse.ArgumentTypeError(
            f"{text!r} mixes band numbers ({', '.join(numbers)}) and names; give 1-based numbers (4,3,2) or band "
            "names (red,green,blue), not both"
        )
    twice = [p for i, p in enumerate(parts) if p.lower() in (q.lower() for q in parts[:i])]
    if twice:
        raise argparse.ArgumentTypeError(f"{text!r} names band {twice[0]!r} twice; name each band once")
    return parts


def config_band_names(value: Any) -> list[str] | None:
    """The band names of a `bands:` YAML key or `bands=[red,nir]` override (the config keeps what it was given:
    numbers or names), checked as `--bands` checks them (`band_list`: no mix of numbers and names, no name twice) and
    numbered per input by `resolve_band_names`, as the flag's are; None for numbers (left to `EmbedConfig.validate`)
    or no bands. A mix or a name given twice is one ConfigError line."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    items = [str(v).strip() for v in value]
    if all(_NUMBER.fullmatch(v) for v in items):  # numbers (1.5 too): EmbedConfig.validate reads or refuses them
        return None
    try:
        got = band_list(",".join(items))
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"bands={list(value)}: {exc}") from None
    return got if got and isinstance(got[0], str) else None


def number_band_names(cfg: Any, inputs: list[Any]) -> None:
    """Python's `bands=["red", "nir"]` (a config's names) as the numbers of those bands in the input(s), as
    `geodino embed --bands red,nir` numbers them (`resolve_band_names`); numbers are left as they are. Names are
    matched in files: for an xarray input they are one line asking for numbers."""
    if not cfg.bands or not isinstance(cfg.bands[0], str):
        return
    if not all(isinstance(i, str | os.PathLike) for i in inputs):
        raise ConfigError(
            f"bands={list(cfg.bands)}: band names are matched in a raster or cube file's bands; for an xarray input "
            "pass 1-based numbers (bands=[4,3,2]) or select the bands on the array first"
        )
    from geodino.embed.pipeline import says

    cfg.bands = resolve_band_names(list(cfg.bands), [str(i) for i in inputs], cfg, say=says(cfg), setting="bands")


BAND_FLAG_HINTS = {"bands": "--bands", "band_names": None, "sensor": "--sensor"}
"""How `_resolve_bands` names the settings in its refusal when `geodino embed --bands` gave the names."""


def _named(setting: str, names: list[str]) -> str:
    """The band names as the user wrote them: `--bands B04,B03` for the flag, `bands=[B04, B03]` for the `bands`
    key of a YAML config, a `bands=[...]` override or Python's `bands=` (`resolve_band_names`'s `setting`)."""
    return f"--bands {','.join(names)}" if setting == "--bands" else f"{setting}=[{', '.join(names)}]"


def resolve_band_names(
    names: list[str], inputs: list[str], cfg: Any, *, say: bool = True, setting: str = "--bands"
) -> list[int]:
    """The 1-based numbers of the bands `--bands NAME,...` names in the input(s), by the rule a data source matches
    its `bands:` with (`geodino.data.archive`): each file's band descriptions (all present and distinct), else the
    names of `--sensor` when it has the file's band count, else b1..bN; a name matches one of those case-insensitively
    or through the sensor's aliases (red, nir, swir16). A name no band has, or two names of one band, is one line
    listing the bands there are. Many scenes must give the same numbers (one `bands` serves them all); STAC input
    names its bands with `--asset-bands` (the item's band names), so names in --bands are refused there. `say`:
    print the line naming the numbers (Python's quiet runs pass False). `setting`: what gave the names, `--bands`
    (the flag) or `bands` (a YAML key, an override, Python's keyword), as each message names it (`_named`)."""
    from geodino.data.sensors import get_sensor
    from geodino.embed.scenes import is_many, list_scenes, scene_outputs
    from geodino.embed.stac import is_stac

    shown, said = ",".join(names), _named(setting, names)
    if is_many(inputs) and is_stac(str(inputs[0])):
        raise ConfigError(
            f"{said}: a STAC item's bands are named with --asset-bands {shown} (bands of --asset by their "
            f"names in the item) or --asset {shown} (one single-band asset each); {setting} takes their 1-based "
            "numbers"
        )
    sensor = get_sensor(cfg.sensor) if cfg.sensor else None
    paths = [str(inputs[0])]
    if is_many(inputs):
        exclude = scene_outputs(cfg.out)[0] if cfg.out else None
        paths = [s.path for s in list_scenes(inputs, exclude=exclude, quiet=True)]
    first: tuple[str, list[int]] | None = None
    for path in paths:
        got = _band_numbers_of(path, names, sensor, cfg, setting)
        if first is None:
            first = (path, got)
        elif got != first[1]:
            raise ConfigError(
                f"{said} names bands {','.join(map(str, first[1]))} of {first[0]} but "
                f"{','.join(map(str, got))} of {path}; one {setting} serves every scene: embed these scenes in "
                "separate runs, or give band numbers"
            )
    assert first is not None  # list_scenes found at least one scene or refused
    more = f" (and of the {plural(len(paths) - 1, 'other scene')})" if len(paths) > 1 else ""
    if say:
        print(f"geodino: {said} reads bands {','.join(map(str, first[1]))} of {first[0]}{more}", file=sys.stderr)
    return first[1]


def _band_numbers_of(path: str, names: list[str], sensor: Any, cfg: Any, setting: str = "--bands") -> list[int]:
    """The numbers of `names` among the bands of one raster or cube (`resolve_band_names`)."""
    from geodino.data.archive_bands import _file_band_names, _resolve_bands
    from geodino.data.colour_bands import guessed_colour_pick, only_colour_tags, tags_only_note
    from geodino.embed.sources import open_source
    from geodino.errors import DuplicateBandError, MissingBandError

    info = open_source(path, variable=cfg.variable, time=cfg.time, sensor=cfg.sensor, listing=True).info
    own = _file_band_names(info, sensor)  # descriptions, else red/green/blue of an RGB file without such a sensor
    file_names = own or (sensor.bands if sensor is not None and sensor.n_bands == info.count else None)
    file_names = file_names or tuple(f"b{i}" for i in range(1, info.count + 1))
    try:
        guess = guessed_colour_pick(info, own, sensor)
        _, idx = _resolve_bands(path, tuple(file_names), names, sensor, BAND_FLAG_HINTS, guess=guess)
    except DuplicateBandError as exc:  # the one rule's refusal, worded with the setting as the user wrote it
        raise ConfigError(
            f"{_named(setting, names)}: {exc.first} and {exc.second} are both band {exc.band} ({exc.name}) of "
            f"{path}; name each band once"
        ) from None
    except MissingBandError as exc:
        flag = setting == "--bands"
        lead = "pass --bands" if flag else f"pass {setting}="  # as the training readers say it (bands=)
        fix = f"{lead} names among those, or their 1-based numbers (1..{info.count})"
        if sensor is not None:
            aliases = sorted({a for a, b in sensor.aliases.items() if a.islower() and b in file_names})
            fix = f"{lead} names among those{' or ' + ', '.join(aliases) if aliases else ''}, or their "
            fix += f"1-based numbers (1..{info.count})"
        elif own is None:  # b1..bN: the file names no band
            how = "--sensor NAME" if flag else "sensor=NAME"
            fix += f"; the file names no bands: {how} (a sensor of {info.count} bands) gives them its names"
        else:  # an alias (red) of a band the file names (B04): say which, as no sensor is given to match aliases
            fix += _alias_hint(exc.band, file_names, flag)
            if only_colour_tags(info, own):  # GDAL's colour tags, not the file's names
                how = "--sensor NAME" if flag else "sensor=NAME"
                fix += f"; {tags_only_note(info.count, how)}"
        raise exc.with_fix(fix) from None
    return list(idx)


def _alias_hint(name: str, file_names: Any, flag: bool = True) -> str:
    """`; red is B04 in sentinel2_l1c/sentinel2_l2a` when built-in sensors read `name` as one of the file's band
    names (matched without a sensor, an alias matches nothing); empty when none does."""
    from geodino.data.sensors import SENSORS

    low = {n.lower(): n for n in file_names}
    found: dict[str, list[str]] = {}
    for key, s in SENSORS.items():
        canon = s.resolve_band(name, strict=False)
        if canon is not None and canon.lower() in low and canon.lower() != name.lower():
            found.setdefault(low[canon.lower()], []).append(key)
    said = "; ".join(f"{name} is {n} in {'/'.join(ks)}" for n, ks in found.items())
    if not found:
        return ""
    if flag:
        return f"; {said}: pass --bands {next(iter(found))} or that --sensor"
    return f"; {said}: pass bands= {next(iter(found))} or that sensor="
