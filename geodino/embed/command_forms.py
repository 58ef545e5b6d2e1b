"""The `geodino embed` forms other than embedding rasters: `embed images DIR` and the products of a feature raster
(pca, cluster, similar, zonal, classify, change). Each handler is a thin call of the public function that prints
one line naming what it wrote."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from geodino.config import options_for
from geodino.embed.command_flags import check_product_items
from geodino.errors import ConfigError, plural


def run_images(args: argparse.Namespace) -> int:
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
        embed_images(args.overrides[0], args.backbone, args.out, **command_options(embed_images, args))
    return 0


def command_options(func: Any, args: argparse.Namespace, **values: Any) -> dict[str, Any]:
    """`options_for(func, args, ...)` less the flags not given (None): `func`'s own defaults apply to those."""
    return {k: v for k, v in options_for(func, args, **values).items() if v is not None}


def run_product(args: argparse.Namespace) -> int:
    rest = list(args.overrides)
    if not rest:
        raise ConfigError(f"geodino embed {args.input} needs a feature raster: geodino embed {args.input} FEATURES ...")
    check_product_items(args.input, rest)
    if not args.out:
        raise ConfigError(f"geodino embed {args.input} needs --out")
    from geodino.io import make_dirs
    from geodino.run_lock import locked_output

    out = Path(args.out).expanduser()
    make_dirs(out.parent)  # the lock file sits beside the output
    # one run at a time writes OUT and its sidecars (class table OUT.aux.xml, .qml, .sld, PNG, classify's model): two
    # runs into one --out at once both exited 0 and could leave the map of one beside the class table of the other
    with locked_output(out, what="output"):
        return _product(args, rest)


def _product(args: argparse.Namespace, rest: list[str]) -> int:
    from geodino.embed import products

    feats, overwrite = rest[0], bool(args.overwrite)
    if args.input in ("classify", "change"):
        return classify_or_change(args, rest, overwrite)
    from geodino.embed.style import qml_path, sld_path

    png = args.png
    also = f", {png}" if png else ""
    if args.input == "pca":
        out = products.pca_map(feats, args.out, **command_options(products.pca_map, args, overwrite=overwrite))
        print(
            f"pca: {out} (3-band uint8 COG of the first principal components), {qml_path(out)}, {sld_path(out)}{also}"
        )
    elif args.input == "cluster":
        opts = command_options(products.cluster_map, args, overwrite=overwrite)
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
        opts = command_options(products.similarity_map, args, point=point, point_crs=crs, overwrite=overwrite)
        out = products.similarity_map(feats, args.out, **opts)
        query = f"the point {','.join(args.point)}" if point else f"the polygons of {args.polygon}"
        png = png or out.with_suffix(".png")
        print(f"similar: {out} (cosine similarity to {query}), {qml_path(out)}, {sld_path(out)}, {png}")
    else:
        opts = command_options(products.zonal_embeddings, args, overwrite=overwrite)
        out = products.zonal_embeddings(feats, rest[1], args.out, **opts)
        import pandas as pd

        status = pd.read_parquet(out, columns=["status"])["status"]
        png = png or out.with_suffix(".png")
        ok = int((status == "ok").sum())
        print(f"zonal: {out} ({ok} of {plural(len(status), 'polygon')} with a mean embedding), {png}")
    return 0


def classify_or_change(args: argparse.Namespace, rest: list[str], overwrite: bool) -> int:
    """`embed classify FEATURES [LABELS]` and `embed change A B`: print where the outputs went (each COG's `.qml`
    and `.sld` styles and PNG quick-look too, as pca/cluster/similar say theirs) and the scores."""
    from geodino.embed.style import qml_path, sld_path

    if args.input == "change":
        from geodino.embed.change import change_map

        s = change_map(rest[0], rest[1], args.out, **command_options(change_map, args, overwrite=overwrite))
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
    m = classify_map(rest[0], labels, args.out, **command_options(classify_map, args, overwrite=overwrite))
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
        f"metrics {m['metrics']}"
        + (f"; model {m['model']}" if "model" in m else "")
        + (f" (saved as {m['saved_model']})" if "saved_model" in m else "")
    )
    return 0
