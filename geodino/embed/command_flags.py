"""Which flags each form of `geodino embed` reads, and the one-line refusals of the others (`check_flags`), or of
a product's `key=value` item or extra file (`check_product_items`). One parser holds every form's flags, so each
form ignored the others' silently; `commands.py` calls these and re-exports the names.
"""

from __future__ import annotations

import argparse
import os
import re

from geodino.data.band_args import BAND_NUMBERS_HINT
from geodino.errors import ConfigError

PRODUCTS = ("pca", "cluster", "similar", "zonal", "classify", "change")

EMBED_FLAGS = (
    "backbone out tile overlap blend margin batch_size layers layer_mode l2_normalize dtype chunk upsample sensor "
    "scale bands nodata variable time bbox bbox_crs window asset asset_bands allow_no_crs overwrite resume amp device "
    "workers world_size rank threads progress on_error"
).split()


IMAGES_FLAGS = ("pool", "image_size", "on_error", "offset")
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
FLAG_NAMES = {"l2_normalize": "--l2", "amp": "--bf16", "progress": "--no-progress"}


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
    accepted = accepted_flags(command)
    given = [n for n in (*IMAGES_FLAGS, *EMBED_FLAGS, "config", *PRODUCT_FLAGS) if getattr(args, n, None) is not None]
    given = [n for n in dict.fromkeys(given) if n not in accepted]
    if not given:
        return
    name = given[0]
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


NUMBER_LIST_FLAGS = ("--point", "--bbox", "--layers")
"""Flags whose value is a comma-separated list of numbers, often negative (western longitudes, southern latitudes,
blocks counted from the end)."""
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BAND_NUMBERS = re.compile(r"\d+(,\d+)*,?")


def _negative_list(token: str) -> bool:
    """Whether `token` is a comma-separated list of numbers starting with a minus (`-119.72,37.11`), which argparse
    takes for an option (its negative-number rule knows single numbers only)."""
    parts = token.split(",")
    return token.startswith("-") and len(parts) > 1 and all(_NUMBER.fullmatch(p.strip()) for p in parts)


def join_negative_lists(args: list[str]) -> list[str]:
    """`--point -119.72,37.11` as `--point=-119.72,37.11` (and `--bbox -120.5,37,-119.5,38`, `--layers -2,-1`):
    argparse read the value as an unknown option and said "expected at least one argument". Only comma lists are
    joined: a single negative number (`--point -119.72 37.11`) is already a value to argparse. Nothing after `--`
    is touched."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return out + list(args[i:])
        if a in NUMBER_LIST_FLAGS and i + 1 < len(args) and _negative_list(args[i + 1]):
            out.append(f"{a}={args[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def join_band_numbers(args: list[str]) -> list[str]:
    """`--bands 4 3 2` as `--bands=4,3,2`, the spelling every other command's `--bands` takes (names there: B04 B03
    B02): embed's --bands took one value, so 3 and 2 became more input scenes ("--out names one raster, but the
    input has many scenes"). Only whole numbers right after --bands that are not existing files are joined."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return out + list(args[i:])
        out.append(a)
        i += 1
        if a != "--bands":
            continue
        taken = []
        while i < len(args) and _BAND_NUMBERS.fullmatch(args[i]) and not os.path.exists(args[i]):
            taken.append(args[i].strip(","))
            i += 1
        if taken:
            out[-1] = f"--bands={','.join(taken)}"
    return out


def band_numbers(text: str) -> list[int]:
    """The `type` of embed's `--bands`: 1-based band numbers (4,3,2); band names are a one-line argparse error that
    says where names go (the backbone spec, --sensor), as `bands=` in YAML is refused (`parse_band_numbers`)."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of band numbers: {BAND_NUMBERS_HINT}") from None
