"""The `geodino embed` argument parser's parts: its usage lines, the parser class that takes `key=value` overrides
after options, and the flag groups (embedding, products, classify/change, images) `commands.register` adds."""

from __future__ import annotations

import argparse
import re
import sys

from geodino.cli import Parser
from geodino.embed.backbone import layers_flag
from geodino.embed.command_flags import asset_bands_flag, band_list, join_band_numbers, join_negative_lists

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
       geodino embed classify FEATURES --model MAP.model.safetensors --out MAP2.tif
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


class IntermixedParser(Parser):
    """Allows `key=value` overrides after options (`embed IN --out X tile=256`): plain argparse stops taking
    positionals once the first group is consumed. Negative comma lists after --point/--bbox/--layers are joined to
    their flag first (`join_negative_lists`), and `--bands 4 3 2` to `--bands=4,3,2` (`join_band_numbers`)."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            args = join_band_numbers(join_negative_lists(list(sys.argv[1:] if args is None else args)))
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def add_embedding_flags(p: argparse.ArgumentParser) -> None:
    """The "embedding" group: how features are computed, of which area, and how the run is spread."""
    g = p.add_argument_group("embedding")
    g.add_argument("--backbone", "-b", help="backbone spec: checkpoint, arch:vit_small?bands=4, timm:NAME")
    g.add_argument("--out", "-o", help="output .tif (COG) or .zarr (GeoZarr v2); products: their output")
    g.add_argument("--tile", "--tile-size", type=int, dest="tile", help="tile size in input pixels (default 512)")
    g.add_argument("--overlap", type=int, help="tile overlap in input pixels (default 128)")
    g.add_argument("--blend", choices=("cosine", "hann", "center"), help="blending of overlaps (default cosine)")
    g.add_argument(
        "--margin",
        type=int,
        help="pixels at inner tile borders with weight 0 (default overlap/4, rounded down to the patch size)",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        dest="batch_size",
        help="tiles per forward pass (default 8; embed images: images per pass, default 32)",
    )
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
    g.add_argument(
        "--l2",
        type=_bool,
        dest="l2_normalize",
        metavar="{true,false}",
        help="unit-length vectors: true or false (default: on for int8)",
    )
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
        help="DN -> reflectance factor, not with --sensor (default: the file's declared scale/offset, else the "
        "export's recorded scale, else by dtype: uint8 /255, uint16 and int16 /1e4, floats as given; other integer "
        "types need --scale)",
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
    g.add_argument("--workers", type=int, help="spawn N processes on disjoint blocks of one store (default 1)")
    g.add_argument(
        "--world-size",
        type=int,
        dest="world_size",
        help="ranks launched outside (e.g. SLURM; default 1); many scenes: split them",
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


def add_product_flags(p: argparse.ArgumentParser) -> None:
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


def add_classify_change_flags(p: argparse.ArgumentParser) -> None:
    """The classify and change group."""
    c = p.add_argument_group("classify FEATURES LABELS --column NAME | change A B")
    c.add_argument("--column", help="label column holding the class names (classify)")
    c.add_argument("--model", help="apply a saved classifier instead of fitting one (classify)")
    c.add_argument(
        "--save-model",
        dest="save_model",
        help="where to save the fitted model (classify; default MAP.model.safetensors; with an older geodino's "
        "--model M.joblib: re-save it in this format)",
    )
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


def add_images_flags(p: argparse.ArgumentParser) -> None:
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
        help="resize every image to N x N pixels (default 0: native size)",
    )
    i.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        dest="on_error",
        help="unreadable images (default skip); many scenes: a scene that cannot be read (default stop)",
    )
    i.add_argument("--offset", type=float, help="added after --scale: reflectance = DN * scale + offset")
    i.add_argument(
        "--no-file-scale",
        action="store_false",
        default=None,
        dest="file_scale",
        help="do not read the files' own GDAL scale/offset (default: read, as geodino embed's file_scale); the "
        "backbone's recorded scale, else the dtype rule, applies",
    )
