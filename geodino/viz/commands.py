"""`geodino viz attention`: CLS-to-patch attention maps, the attention-mass mask and, with --point, a similarity map."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from geodino.errors import plural

__all__ = ["register"]


_NEGATIVE_LIST = re.compile(r"-\s*(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(\s*,\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)+,?")
"""A comma list of numbers that starts with a minus (`-0.5,3`, `-78.04,24.71`): argparse takes it for an option."""
_JOINED = ("--point", "--window")


def join_negative_lists(args: list[str]) -> list[str]:
    """`--point -0.5,3` as `--point=-0.5,3` (and `--window -8,0,64,64`): argparse read the value as an unknown option
    and stopped with "expected at least one argument", though the doc spells a point left of the image, or a western
    longitude under `--point-crs EPSG:4326`, that way. Nothing after `--` is touched."""
    out: list[str] = []
    for i, a in enumerate(args):
        if a == "--":
            return out + list(args[i:])
        if out and out[-1] in _JOINED and _NEGATIVE_LIST.fullmatch(a):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


class _JoiningParser:
    """Mixed into the attention sub-command's parser class: its arguments pass `join_negative_lists` first."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        listed = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(join_negative_lists(listed), namespace)  # type: ignore[misc]


def register(subparsers: Any) -> None:
    """Add the `viz` command and its `attention` sub-command."""
    from geodino.cli import CommaList, NumberList

    what = "look inside a backbone: CLS attention maps (viz attention), a patch-similarity map (viz attention --point)"
    p = subparsers.add_parser("viz", help=what, description=what[0].upper() + what[1:] + ".")
    sub = p.add_subparsers(dest="viz_command", metavar="SUBCOMMAND")
    a = sub.add_parser(
        "attention",
        help="per-head CLS-to-patch attention of a block, its mean, the 60 %% mass mask (--mass), and with "
        "--point a patch-similarity map, as PNGs (+ COG)",
        description="The CLS query's attention over the patch tokens of one block (storage tokens excluded), per "
        "head and averaged, the mask of the patches holding --mass of the attention, and with --point the cosine "
        "similarity of that patch to every patch. PNGs over the image (multispectral: the sensor's RGB bands); "
        "for a georeferenced raster also a float32 COG on the patch grid.",
    )
    a.add_argument("input", help="an image (.jpg/.png) or a raster (.tif/.vrt)")
    a.add_argument("--backbone", "-b", required=True, help="backbone spec (checkpoint, HF folder, arch:..., timm:...)")
    a.add_argument("--out", "-o", required=True, help="output folder")
    a.add_argument(
        "--layer",
        "--block",
        dest="layer",
        type=int,
        default=-1,
        help="block index (default -1: the last block; embed's --layers names blocks too, its --layer a GeoPackage "
        "layer)",
    )
    a.add_argument("--heads", nargs="+", action=NumberList, default=None,
                   help="head indices to show, 0 1 or 0,1 (default: all)")  # fmt: skip
    a.add_argument(
        "--mass", type=float, default=0.6, help="share of attention mass the mask keeps, in (0, 1] (default 0.6)"
    )
    a.add_argument(
        "--point",
        nargs="+",
        metavar="X,Y",
        default=None,
        help="similarity map for the patch at this point, X Y or X,Y: pixel col row of the file (also with --window), "
        "or map x y with --point-crs",
    )
    a.add_argument(
        "--point-crs",
        nargs="?",
        const="raster",
        default=None,
        help="--point is in map coordinates: the bare flag for the raster's CRS, or a CRS such as EPSG:4326 (lon,lat)",
    )
    a.add_argument("--sensor", default=None, help="data sensor of the input (scale, band names, RGB bands)")
    a.add_argument("--bands", nargs="+", action=CommaList, default=None,
                   help="band names to read from the raster (B04 B03 B02 or B04,B03,B02)")  # fmt: skip
    a.add_argument(
        "--window",
        nargs="+",
        action=NumberList,
        const=4,
        metavar="COL ROW W H",
        default=None,
        help="read only this pixel window of the input (or COL,ROW,W,H)",
    )
    a.add_argument(
        "--device", default="cpu", help="torch device of the backbone: cpu, cuda, cuda:1, mps (default: %(default)s)"
    )
    a.add_argument("--overwrite", action="store_true", help="replace the attention maps of an earlier run in --out")
    a.set_defaults(func=_attention)
    a.__class__ = type("AttentionParser", (_JoiningParser, type(a)), {})
    p.set_defaults(func=lambda args: p.print_help() or 0)


def _attention(args: argparse.Namespace) -> int:
    from geodino.errors import InputError
    from geodino.io import make_dirs
    from geodino.run_lock import locked_output
    from geodino.viz.attention import check_mass, check_output_folder

    if args.point_crs and args.point is None:  # a flag that changes nothing would hide a forgotten --point
        raise InputError("--point-crs says how to read --point, which is missing; pass --point X Y as well")
    check_mass(args.mass)
    out = check_output_folder(args.out, overwrite=args.overwrite)  # before the backbone is loaded and run
    # the folder itself, not only its parent: an --out naming a file or an unwritable place was refused only when
    # the maps were written, after the forward pass (a failed run removes the folders it created)
    make_dirs(out)  # the lock file sits beside it, in its parent
    with locked_output(out, what="output folder"):  # a second run into one --out stops with one line
        return _attention_locked(args)


def _attention_locked(args: argparse.Namespace) -> int:
    """`viz attention` while holding its output folder's lock."""
    from geodino.backbones import load_backbone
    from geodino.errors import InputError
    from geodino.viz.attention import attention_maps, crop_note, read_input, window_point, write_attention
    from geodino.viz.attention_outputs import mass_percent  # --mass 0.004 printed "hold 0% of the attention"

    backbone = None
    if args.sensor is None:  # a raster may be read by the backbone's record, a photo with its band count too
        backbone = load_backbone(args.backbone, device=args.device)
    sample = read_input(args.input, sensor=args.sensor, bands=args.bands, window=args.window, backbone=backbone)
    if sample.get("sensor_note"):
        print(sample["sensor_note"], file=sys.stderr)
    point = None
    if args.point is not None:
        import math

        from geodino.cli import parse_point

        x, y = parse_point(args.point)
        if args.point_crs:
            if sample.get("transform") is None:
                raise InputError(f"--point-crs needs a georeferenced input; {args.input} has no CRS")
            if args.point_crs != "raster":  # e.g. lon,lat in EPSG:4326, into the raster's CRS
                from pyproj import Transformer

                from geodino.embed.placement import user_crs

                own = user_crs(sample["crs"], "the raster's CRS")
                crs = user_crs(args.point_crs, "--point-crs", own)
                x, y = Transformer.from_crs(crs, own, always_xy=True).transform(x, y, errcheck=False)
                if not (math.isfinite(x) and math.isfinite(y)):
                    raise InputError(
                        f"--point {' '.join(args.point)} (in {args.point_crs}) cannot be placed in the CRS of "
                        f"{args.input}; check the coordinates' order (X Y: lon lat, easting northing)"
                    )
            col, row = ~sample["transform"] @ (x, y)  # the sample's transform is the window's
            point = (math.floor(col), math.floor(row))
            _check_map_point(point, sample, args)
        else:
            point = window_point((math.floor(x), math.floor(y)), args.window, args.input)  # -0.5: col -1
    if backbone is None:  # read by --sensor first: its DN-as-reflectance check needs the backbone (read_input's)
        from geodino.viz.attention_input import warn_sensor_dn

        backbone = load_backbone(args.backbone, device=args.device)
        warn_sensor_dn(sample, backbone)
    maps = attention_maps(backbone, sample, layer=args.layer, heads=args.heads, mass=args.mass, point=point)
    note = crop_note(maps, sample)
    if note:
        print(note, file=sys.stderr)
    files = write_attention(maps, sample, args.out, overwrite=args.overwrite)
    shown = _first_three_note(sample)
    if shown:
        print(shown, file=sys.stderr)
    n_valid, n_all = maps.info.get("valid_patches", maps.mean.size), maps.mean.size
    of = "patches" if n_valid == n_all else f"the {n_valid} of {n_all} patches with data ({n_valid / n_all:.0%})"
    print(
        f"block {maps.layer}, {plural(len(maps.head_ids), 'head')}, patch grid {maps.grid[1]} x {maps.grid[0]} "
        "(width x height): "
        f"{maps.info['kept_share']:.0%} of {of} hold {mass_percent(maps.mass)}% of the mean attention"
    )
    for name, path in files.items():
        print(f"  {name:10s} {path}")
    return 0


def _first_three_note(sample: dict[str, Any]) -> str | None:
    """A line when the pictures show the first three of more bands as red, green, blue because the sensor names no
    RGB bands (a `data stats` YAML of B1..B7): the doc promises the sensor's RGB bands, and Landsat's B1 (blue) was
    drawn as red without a word."""
    sensor, bands = sample.get("sensor"), list(sample.get("bands") or [])
    if sensor is None or len(bands) <= 3:
        return None
    if sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands):
        return None
    return (
        f"geodino: sensor {sensor.name} names no RGB bands, so the pictures show bands {', '.join(bands[:3])} as "
        "red, green, blue; give a sensor YAML with rgb_bands: [RED, GREEN, BLUE] (band names) to choose them"
    )


def _check_map_point(point: tuple[int, int], sample: dict[str, Any], args: argparse.Namespace) -> None:
    """A `--point` in map coordinates that misses the pixels read, named as given (its CRS) and at the file's pixel
    it falls on, not at window-relative pixels the user never wrote (`point (col -23, row -22) is outside ...`)."""
    from geodino.errors import InputError

    c, r, w, h = sample.get("window") or (0, 0, sample["image"].shape[-1], sample["image"].shape[-2])
    col, row = point
    if 0 <= col < w and 0 <= row < h:
        return
    crs = "the raster's CRS" if args.point_crs == "raster" else args.point_crs
    where = f"--window {c} {r} {w} {h}" if sample.get("window") else f"the raster ({w} x {h} px, width x height)"
    raise InputError(
        f"--point {' '.join(args.point)} (in {crs}) falls on pixel col {col + c}, row {row + r} of {args.input}, "
        f"outside {where}; give a point inside it"
    )
