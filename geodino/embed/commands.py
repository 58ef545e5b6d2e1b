"""`geodino embed INPUT --backbone SPEC --out OUT.tif|OUT.zarr` and `geodino embed pca|cluster|similar|zonal`.

One parser serves both forms (argparse cannot mix a positional INPUT with sub-commands): when the first
positional is a product name the product runs on the feature raster given next. Every handler is a thin call
of the public function (`embed_raster`, `pca_map`, `cluster_map`, `similarity_map`, `zonal_embeddings`,
`classify_map`, `change_map`) that prints one line naming what it wrote. A flag the form given does not read
(`check_flags`), or a product's `key=value` item or extra file (`check_product_items`), is one line (was ignored).
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any

from geodino.cli import Parser
from geodino.config import options_for
from geodino.embed.backbone import layers_flag
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
from geodino.errors import ConfigError, plural

USAGE = """geodino embed INPUT --backbone SPEC --out OUT.tif|OUT.zarr [options] [key=value ...]
       geodino embed INPUT ... (--bbox MINX MINY MAXX MAXY [--bbox-crs EPSG:4326] | --window COL ROW WIDTH HEIGHT)
       geodino embed FOLDER|'GLOB'|LIST.txt|SCENES... --backbone SPEC --out FOLDER [--world-size W --rank R]
       geodino embed ITEMS.json|CATALOG.json|URL --asset NAME [--asset-bands red,green,nir] -b SPEC --out FOLDER
       geodino embed ITEMS.json --asset red,green,blue,nir -b SPEC --out FOLDER   (one band per asset, stacked)
       geodino embed pca FEATURES --out PCA.tif [--png PCA.png]
       geodino embed cluster FEATURES --out CLASSES.tif --k 8 [--png CLASSES.png]
       geodino embed similar FEATURES --out SIM.tif (--point X,Y [--point-crs EPSG:4326] | --polygon FILE) [--png P]
       geodino embed zonal FEATURES POLYGONS --out ZONES.parquet [--layer NAME] [--all-touched] [--png P]
       geodino embed classify FEATURES LABELS --column NAME --out MAP.tif [--method logreg|knn] [--test FILE]
       geodino embed classify FEATURES --model MAP.model.joblib --out MAP2.tif
       geodino embed change A.tif B.tif --out CHANGE.tif [--threshold T|otsu] [--resample]
       geodino embed images DIR -b SPEC --out FEATS.parquet [--pool cls|mean|cls+mean] [--image-size N]"""


def _bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{v!r} is not a boolean (true/false)")


def _time(text: str) -> int | str:
    """`--time`: a whole number is a date index (`-1`: the last), anything else a date label (as `time=` in YAML)."""
    return int(text) if re.fullmatch(r"\s*-?\d+\s*", text) else text


class _IntermixedParser(Parser):
    """Allows `key=value` overrides after options (`embed IN --out X tile=256`): plain argparse stops taking
    positionals once the first group is consumed. Negative comma lists after --point/--bbox/--layers are joined to
    their flag first (`join_negative_lists`), and `--bands 4 3 2` to `--bands=4,3,2` (`join_band_numbers`)."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            args = join_band_numbers(join_negative_lists(list(sys.argv[1:] if args is None else args)))
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def register(subparsers: Any) -> None:
    """Add the `embed` command (feature rasters and their products)."""
    from geodino.cli import add_config_arguments
    from geodino.embed.config import EmbedConfig

    p = subparsers.add_parser(
        "embed",
        usage=USAGE,
        help="feature rasters (COG/GeoZarr) and their products: pca, cluster, similar, zonal, classify, change",
        description="Write a backbone's patch features of a raster as a georeferenced COG or GeoZarr "
        "(streaming, seam-free, resumable, parallel), or make a product from such a feature raster.",
    )
    p.__class__ = _IntermixedParser
    p.add_argument(
        "input",
        help="raster/VRT/Zarr to embed; many scenes: a folder, a quoted glob, a .txt list or several rasters, or STAC "
        "JSON (file or URL) -> one feature raster each in --out FOLDER plus FOLDER/mosaic.vrt; or a product name: "
        + "|".join(PRODUCTS)
        + "; or images DIR (one vector per image file -> GeoParquet)",
    )
    add_config_arguments(p, EmbedConfig)
    _add_embedding_flags(p)
    _add_product_flags(p)
    _add_classify_change_flags(p)
    _add_images_flags(p)
    p.set_defaults(func=run)


def _add_embedding_flags(p: argparse.ArgumentParser) -> None:
    """The "embedding" group: how features are computed, of which area, and how the run is spread."""
    g = p.add_argument_group("embedding")
    g.add_argument("--backbone", "-b", help="backbone spec: checkpoint, arch:vit_small?bands=4, timm:NAME")
    g.add_argument("--out", "-o", help="output .tif (COG) or .zarr (GeoZarr v2); products: their output")
    g.add_argument("--tile", "--tile-size", type=int, dest="tile", help="tile size in input pixels (default 512)")
    g.add_argument("--overlap", type=int, help="tile overlap in input pixels (default 128)")
    g.add_argument("--blend", choices=("cosine", "hann", "center"), help="blending of overlaps (default cosine)")
    g.add_argument("--margin", type=int, help="pixels at inner tile borders with weight 0 (default overlap/4)")
    g.add_argument("--batch-size", type=int, dest="batch_size", help="tiles per forward pass (default 8)")
    g.add_argument(
        "--layers",
        type=layers_flag,
        help="last (default) | four_last | four_even | four_even_official | block indices like 4,8,11; negative "
        "count from the end: --layers -2,-1 is the last two blocks",
    )
    g.add_argument(
        "--layer-mode",
        choices=("concat", "mean"),
        dest="layer_mode",
        help="several --layers: concatenate their features or average them (default concat)",
    )
    g.add_argument("--l2", type=_bool, dest="l2_normalize", help="unit-length vectors (default: on for int8)")
    g.add_argument(
        "--dtype",
        choices=("float32", "float16", "int8"),
        help="stored feature type (default float32; int8: unit-length vectors, AlphaEarth coding)",
    )
    g.add_argument("--chunk", type=int, help="storage chunk in output cells (default: auto)")
    g.add_argument("--upsample", action="store_true", default=None, help="write at the input resolution")
    g.add_argument(
        "--sensor",
        help="the data's sensor, e.g. sentinel2_l2a: its DN scale (not with --scale) and, for a raster without band "
        "descriptions, its band names for --bands",
    )
    g.add_argument(
        "--scale",
        type=float,
        help="DN -> reflectance factor, not with --sensor (default: the export's recorded scale, else by dtype: "
        "uint8 /255, ints /1e4)",
    )
    g.add_argument(
        "--bands",
        type=band_list,
        help="input bands to use: 1-based numbers (4,3,2 or 4 3 2) or names (red,green,blue or B04 B03 B02: the "
        "raster's band descriptions, else --sensor's band names and aliases when it has the raster's band count)",
    )
    g.add_argument("--nodata", type=float, help="override the input's nodata value")
    g.add_argument("--variable", help="variable of a Zarr/NetCDF cube")
    g.add_argument(
        "--time",
        type=_time,
        help="the date of a cube with a time dimension: an index (0; -1: the last) or a date label (2024-02-01)",
    )
    g.add_argument(
        "--bbox",
        nargs="+",
        metavar="MINX MINY MAXX MAXY",
        help="embed only this area (or MINX,MINY,MAXX,MAXY; negative values as they are), in --bbox-crs; snapped "
        "outward to the patch grid; many scenes: scenes outside it are skipped",
    )
    g.add_argument(
        "--bbox-crs", dest="bbox_crs", help="CRS of --bbox, e.g. EPSG:4326 for lon/lat (default: the raster's)"
    )
    g.add_argument(
        "--window",
        nargs="+",
        metavar="COL ROW WIDTH HEIGHT",
        help="embed only this pixel window of the input (one raster; snapped outward to the patch grid)",
    )
    g.add_argument(
        "--asset",
        help="STAC input: the item asset to embed (e.g. visual), or single-band assets to stack in order "
        "(red,green,blue,nir: asset keys or band common names)",
    )
    g.add_argument(
        "--asset-bands",
        dest="asset_bands",
        type=asset_bands_flag,
        help="STAC input: bands of the asset by name or 1-based number, e.g. red,green,blue",
    )
    g.add_argument(
        "--allow-no-crs",
        action="store_true",
        default=None,
        dest="allow_no_crs",
        help="embed an input without a CRS (default: refuse it; the output has none either)",
    )
    g.add_argument("--overwrite", action="store_true", default=None, help="replace an existing --out (default: refuse)")
    g.add_argument("--resume", action="store_true", default=None, help="finish an interrupted run")
    g.add_argument(
        "--bf16",
        action="store_true",
        default=None,
        dest="amp",
        help="bf16 inference (the fast path with bf16 weights; the eager model under autocast)",
    )
    g.add_argument("--device", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")
    g.add_argument("--workers", type=int, help="spawn N processes on disjoint blocks of one store")
    g.add_argument(
        "--world-size", type=int, dest="world_size", help="ranks launched outside (e.g. SLURM); many scenes: split them"
    )
    g.add_argument("--rank", type=int, help="this process's rank in 0..--world-size - 1 (default 0)")
    g.add_argument("--threads", type=int, help="torch threads per process (default 0: torch's default)")
    g.add_argument(
        "--no-progress",
        action="store_false",
        default=None,
        dest="progress",
        help="no progress bar (default: shown); the closing lines still come",
    )


def _add_product_flags(p: argparse.ArgumentParser) -> None:
    """The pca | cluster | similar | zonal group."""
    q = p.add_argument_group("products (pca | cluster | similar | zonal; each refuses the flags of the others)")
    q.add_argument(
        "--png", help="PNG quick-look (pca, cluster; similar, zonal, classify, change write OUT.png unless given)"
    )
    q.add_argument("--k", type=int, help="number of clusters (cluster; default 8)")
    q.add_argument(
        "--sample", "--samples", type=int, dest="sample", help="pixels sampled to fit PCA / k-means (default 50000)"
    )
    q.add_argument("--seed", type=int, help="random seed of the sample and fit (pca, cluster, classify; default 0)")
    q.add_argument("--point", nargs="+", metavar="X,Y", help="query point X,Y or X Y (similar)")
    q.add_argument(
        "--point-crs",
        dest="point_crs",
        nargs="?",
        const="raster",
        help="CRS of --point, e.g. EPSG:4326 for lon,lat (default, or the bare flag: the raster's)",
    )
    q.add_argument("--polygon", help="query polygon file (similar)")
    q.add_argument(
        "--layer", help="layer of a multi-layer GeoPackage (zonal POLYGONS, classify LABELS, similar --polygon)"
    )
    q.add_argument("--all-touched", action="store_true", default=None, help="count every touched cell (zonal)")


def _add_classify_change_flags(p: argparse.ArgumentParser) -> None:
    """The classify and change group."""
    c = p.add_argument_group("classify FEATURES LABELS --column NAME | change A B")
    c.add_argument("--column", help="label column holding the class names (classify)")
    c.add_argument("--model", help="apply a saved classifier instead of fitting one (classify)")
    c.add_argument("--save-model", dest="save_model", help="where to save the fitted model (default MAP.model.joblib)")
    c.add_argument("--test", help="independent test labels (same column): accuracy, F1, confusion matrix (classify)")
    c.add_argument("--method", choices=("logreg", "knn"), help="classifier (default logreg)")
    c.add_argument("--neighbors", type=int, help="k of the kNN classifier (default 5)")
    c.add_argument("--folds", type=int, help="blocked cross-validation folds (default 5, at least 2)")
    c.add_argument(
        "--cv-gap",
        type=int,
        dest="cv_gap",
        help="labels with cells this close (in cells) are one cross-validation group (default 1; 0: a shared cell)",
    )
    c.add_argument("--max-cells", type=int, dest="max_cells", help="cells sampled per label polygon (default 1000)")
    c.add_argument("--threshold", help="change: a cosine distance in [0, 2] or 'otsu' -> binary change COG")
    c.add_argument("--mask", help="change: path of the binary change COG (default CHANGE_mask.tif)")
    c.add_argument("--resample", action="store_true", default=None, help="change: resample B onto A's grid if needed")


def _add_images_flags(p: argparse.ArgumentParser) -> None:
    """The `embed images DIR` group (one vector per image file)."""
    i = p.add_argument_group(
        "images DIR: one vector per image file -> GeoParquet (also --batch-size, --layers, --l2 ...)"
    )
    i.add_argument(
        "--pool", choices=("cls", "mean", "cls+mean"), help="CLS token, mean patch token or both (default cls)"
    )
    i.add_argument(
        "--image-size",
        type=int,
        dest="image_size",
        metavar="N",
        help="resize every image to N x N (default 0: native size)",
    )
    i.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        dest="on_error",
        help="unreadable images (default skip); many scenes: a scene that cannot be read (default stop)",
    )
    i.add_argument("--offset", type=float, help="added after --scale: reflectance = DN * scale + offset")


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
        return _images(args)
    if command in PRODUCTS:
        return _product(args)
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


def _images(args: argparse.Namespace) -> int:
    """`embed images DIR`: one embedding per image file, written as GeoParquet (`embed_images`)."""
    from geodino.embed.images import embed_images

    if len(args.overrides) != 1:
        got = f"; unexpected {' '.join(args.overrides[1:])}" if args.overrides else ""
        raise ConfigError(
            f"geodino embed images takes one folder: geodino embed images DIR -b SPEC --out F.parquet{got}"
        )
    if not args.backbone or not args.out:
        raise ConfigError("geodino embed images needs --backbone SPEC and --out FEATS.parquet")
    if args.bands and isinstance(args.bands[0], str):  # image files carry no band names to match
        raise ConfigError(
            f"--bands {','.join(args.bands)}: geodino embed images selects the images' bands by 1-based number "
            "(e.g. --bands 1,2,3); band names apply to rasters (geodino embed INPUT)"
        )
    if args.scale == 0:  # scale=0 is the Python default ("unset"); the other forms of embed refuse --scale 0
        raise ConfigError(
            "--scale 0 must be a positive DN -> reflectance factor, e.g. --scale 1e-4; leave --scale out for the "
            "default (the backbone's recorded scale, else by dtype), as geodino embed INPUT takes it"
        )
    if args.threads is not None:  # < 0 or above the CPU count: a RuntimeError or MemoryError traceback from torch
        from geodino.embed.config import check_threads

        check_threads(int(args.threads))
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    from geodino.embed.pipeline import run_lines

    with run_lines():  # the command says what it wrote, also with --no-progress (Python: only with the bar)
        embed_images(args.overrides[0], args.backbone, args.out, **_options(embed_images, args))
    return 0


def _options(func: Any, args: argparse.Namespace, **values: Any) -> dict[str, Any]:
    """`options_for(func, args, ...)` less the flags not given (None): `func`'s own defaults apply to those."""
    return {k: v for k, v in options_for(func, args, **values).items() if v is not None}


def _product(args: argparse.Namespace) -> int:
    from geodino.embed import products

    rest = list(args.overrides)
    if not rest:
        raise ConfigError(f"geodino embed {args.input} needs a feature raster: geodino embed {args.input} FEATURES ...")
    check_product_items(args.input, rest)
    if not args.out:
        raise ConfigError(f"geodino embed {args.input} needs --out")
    feats, overwrite = rest[0], bool(args.overwrite)
    if args.input in ("classify", "change"):
        return _classify_or_change(args, rest, overwrite)
    from geodino.embed.style import qml_path, sld_path

    png = args.png
    also = f", {png}" if png else ""
    if args.input == "pca":
        out = products.pca_map(feats, args.out, **_options(products.pca_map, args, overwrite=overwrite))
        print(
            f"pca: {out} (3-band uint8 COG of the first principal components), {qml_path(out)}, {sld_path(out)}{also}"
        )
    elif args.input == "cluster":
        opts = _options(products.cluster_map, args, overwrite=overwrite)
        out = products.cluster_map(feats, args.out, **opts)
        k = opts.get("k", inspect.signature(products.cluster_map).parameters["k"].default)
        print(
            f"cluster: {out} ({k} k-means classes, colour table), {out}.aux.xml (class table: keep it with the "
            f".tif), {qml_path(out)}, {sld_path(out)}{also}"
        )
    elif args.input == "similar":
        from geodino.cli import parse_point

        point = parse_point(args.point) if args.point else None
        crs = None if args.point_crs == "raster" else args.point_crs
        opts = _options(products.similarity_map, args, point=point, point_crs=crs, overwrite=overwrite)
        out = products.similarity_map(feats, args.out, **opts)
        query = f"the point {','.join(args.point)}" if point else f"the polygons of {args.polygon}"
        png = png or out.with_suffix(".png")
        print(f"similar: {out} (cosine similarity to {query}), {qml_path(out)}, {sld_path(out)}, {png}")
    else:
        opts = _options(products.zonal_embeddings, args, overwrite=overwrite)
        out = products.zonal_embeddings(feats, rest[1], args.out, **opts)
        import pandas as pd

        status = pd.read_parquet(out, columns=["status"])["status"]
        png = png or out.with_suffix(".png")
        ok = int((status == "ok").sum())
        print(f"zonal: {out} ({ok} of {plural(len(status), 'polygon')} with a mean embedding), {png}")
    return 0


def _classify_or_change(args: argparse.Namespace, rest: list[str], overwrite: bool) -> int:
    """`embed classify FEATURES [LABELS]` and `embed change A B`: print where the outputs went (each COG's `.qml`
    and `.sld` styles and PNG quick-look too, as pca/cluster/similar say theirs) and the scores."""
    from geodino.embed.style import qml_path, sld_path

    if args.input == "change":
        from geodino.embed.change import change_map

        s = change_map(rest[0], rest[1], args.out, **_options(change_map, args, overwrite=overwrite))
        dist = s["distance"]
        line = f"change: {dist} (cosine distance, p99 {s['p99']:.3f}), {qml_path(dist)}, {sld_path(dist)}, {s['png']}"
        if "mask" in s:
            line += f"; {s['mask']}: {s['changed_share']:.1%} of {plural(s['valid_cells'], 'cell')} changed (threshold "
            line += f"{s['threshold']:.3f}, {s['method']}), {qml_path(s['mask'])}, {sld_path(s['mask'])}, "
            line += str(Path(s["mask"]).with_suffix(".png"))  # change_map writes the mask's PNG beside it
        print(line)
        return 0
    from geodino.embed.classify import classify_map, headline

    labels = rest[1] if len(rest) > 1 else None
    m = classify_map(rest[0], labels, args.out, **_options(classify_map, args, overwrite=overwrite))
    cv = m.get("cv") or {}
    if "accuracy" in cv:  # balanced accuracy and macro F1 first: plain accuracy flatters imbalanced labels
        score = f"blocked CV accuracy ({cv['folds']} folds): {headline(cv)}"
    else:
        score = "model reused" if "cv_at_fit" in m else "no CV (a class lies in one group of labels: see the warning)"
    if "test" in m:
        score += f"; test accuracy on {plural(m['test']['n'], 'cell')}: {headline(m['test'])}"
    print(
        f"classify: {m['map']} ({len(m['classes'])} classes: {', '.join(m['classes'])}; class names also in "
        f"{m['map']}.aux.xml), {qml_path(m['map'])}, {sld_path(m['map'])}, {m['png']}; {score}; "
        f"metrics {m['metrics']}" + (f"; model {m['model']}" if "model" in m else "")
    )
    return 0
