"""`geodino embed INPUT --backbone SPEC --out OUT.tif|OUT.zarr` and `geodino embed pca|cluster|similar|zonal`.

One parser serves both forms (argparse cannot mix a positional INPUT with sub-commands): when the first
positional is a product name the product runs on the feature raster given next. Every handler is a thin call
of the public function (`embed_raster`, `pca_map`, `cluster_map`, `similarity_map`, `zonal_embeddings`,
`classify_map`, `change_map`) that prints one line naming what it wrote. A flag the form given does not read
(`check_flags`), or a product's `key=value` item or extra file (`check_product_items`), is one line (was ignored).

This module registers the command and embeds rasters; the parser's usage and flag groups are in `command_parser`,
the handlers of `embed images` and the products in `command_forms`, the flag rules in `command_flags`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from geodino.embed.command_flags import (  # noqa: F401  the flag rules' home; importable from here as before
    EMBED_FLAGS,
    IMAGES_FLAGS,
    NUMBER_LIST_FLAGS,
    PRODUCT_FLAGS,
    PRODUCT_ITEMS,
    PRODUCT_OPTIONS,
    PRODUCT_SHARED,
    PRODUCTS,
    RASTER_FLAGS,
    accepted_flags,
    asset_bands_flag,
    asset_bands_override,
    band_list,
    band_numbers,
    check_flags,
    check_one_input_flags,
    check_product_items,
    config_band_names,
    join_band_numbers,
    join_negative_lists,
    resolve_band_names,
)
from geodino.embed.command_flags import flag_name as _flag  # noqa: F401  (tests import it as _flag)
from geodino.embed.command_forms import run_images, run_product
from geodino.embed.command_parser import (
    USAGE,
    IntermixedParser,
    add_classify_change_flags,
    add_embedding_flags,
    add_images_flags,
    add_product_flags,
)
from geodino.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the `embed` command (feature rasters and their products)."""
    from geodino.cli import add_config_arguments
    from geodino.embed.config import EmbedConfig

    p = subparsers.add_parser(
        "embed",
        usage=USAGE,
        help="feature rasters (COG/GeoZarr) and their products: pca, cluster, similar, zonal, classify, change; "
        "images -> GeoParquet",
        description="Write a backbone's patch features of a raster as a georeferenced COG or GeoZarr "
        "(streaming, seam-free, resumable, parallel), or make a product from such a feature raster.",
    )
    p.__class__ = IntermixedParser
    p.add_argument(
        "input",
        help="raster/VRT/Zarr to embed; many scenes: a folder, a quoted glob, a .txt list or several rasters, or STAC "
        "JSON (file or URL) -> one feature raster each in --out FOLDER plus FOLDER/mosaic.vrt; or a product name: "
        + "|".join(PRODUCTS)
        + "; or images DIR (one vector per image file -> GeoParquet)",
    )
    add_config_arguments(p, EmbedConfig)
    add_embedding_flags(p)
    add_product_flags(p)
    add_classify_change_flags(p)
    add_images_flags(p)
    p.set_defaults(func=run)


def _overrides_after_lists(args: argparse.Namespace) -> None:
    """`key=value` words that a flag of several values took (`--window 0 0 512 512 dtype=float16`) are overrides, as
    anywhere else on the line: the flag was refused as "must be four numbers", naming the override as one."""
    from geodino.config import is_override

    for name in ("window", "bbox", "point"):
        values = getattr(args, name, None)
        if isinstance(values, list) and any(is_override(str(v)) for v in values):
            setattr(args, name, [v for v in values if not is_override(str(v))] or None)
            args.overrides = [*args.overrides, *(v for v in values if is_override(str(v)))]


def run(args: argparse.Namespace) -> int:
    """Dispatch to the embedding, `embed images` or a product, once `check_flags` found no flag of another form."""
    _overrides_after_lists(args)
    command = args.input if args.input in PRODUCTS else "embed"
    if args.input == "images" and (args.overrides or not os.path.exists("images")):
        command = "images"  # a folder named images is still embedded as scenes when nothing follows it
    check_flags(args, command)
    if command == "images":
        return run_images(args)
    if command in PRODUCTS:
        return run_product(args)
    from geodino.config import load_config
    from geodino.embed.pipeline import EmbedConfig, embed_raster, run_lines

    extra = [v for v in args.overrides if "=" not in v]  # a shell-expanded glob (scenes/*.tif): more inputs
    asset_bands_override(args.overrides)  # `asset_bands=red nir` is one band 'red nir' once read as a list
    cfg = load_config(EmbedConfig, args.config, [v for v in args.overrides if "=" in v])
    for name in EMBED_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            setattr(cfg, name, value)
    from geodino.data.paths import one_listed
    from geodino.embed.scenes import embed_scenes, is_many

    # --bands red,nir, or a `bands:` key / override of names: numbered below, once the other settings are checked
    flag = bool(args.bands) and isinstance(args.bands[0], str)
    names = args.bands if flag else config_band_names(cfg.bands)
    if names:
        cfg.bands = None
    cfg.validate()
    inputs = one_listed([args.input, *extra])  # a .txt list of one raster is that raster (its entries checked)
    if names:  # the numbers of the bands so named in the input (its band descriptions, else --sensor's names)
        cfg.bands = resolve_band_names(names, inputs, cfg, setting="--bands" if flag else "bands")
    if not is_many(inputs):
        check_one_input_flags(inputs[0], cfg)
    if cfg.bands and cfg.asset_bands:  # each scene read the asset's --asset-bands; --bands went unused, silently
        raise ConfigError(
            f"--bands {','.join(map(str, cfg.bands))} and --asset-bands {','.join(map(str, cfg.asset_bands))} both "
            f"choose the bands of STAC asset {cfg.asset}; keep one (--asset-bands takes names or 1-based numbers)"
        )
    if cfg.on_error == "skip" and not is_many(inputs):  # nothing to go on with: it was ignored
        raise ConfigError(
            "--on-error skip (on_error) applies to many scenes (a folder, glob, .txt list or STAC) and to geodino "
            "embed images DIR; one raster stops at a block it cannot read (its partial output removed); drop it"
        )
    with run_lines():  # the command says what it used and wrote, also with --no-progress (Python: only with the bar)
        if is_many(inputs):
            embed_scenes(inputs, cfg)  # writes each scene's STAC item and the folder's catalog.json itself
        else:
            embed_raster(inputs[0], config=cfg)  # and its STAC item, once the raster is complete
    return 0
