"""`geodino convert` (checkpoint layouts, band adaptation) and `geodino info` (architectures, a spec's summary)."""

from __future__ import annotations

import argparse
from typing import Any

from geodino.config import options_for

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `convert` and `info` commands."""
    from geodino.cli import CommaList, NumberList, add_output, whole_number

    c = subparsers.add_parser(
        "convert",
        help="convert a backbone between the official, HF transformers and timm layouts",
        description="Convert a DINOv3 backbone file or HF folder between layouts (official .pth/.safetensors, HF "
        "DINOv3ViTModel folder, timm vit_*_patch16_dinov3 state_dict), optionally adapting its patch embedding "
        "to other bands. The input layout is detected; --from checks it.",
    )
    c.add_argument("input", help="checkpoint file (.pth/.safetensors/.ckpt) or HF folder")
    add_output(
        c, "output", "output file (.pth or .safetensors) or, for --to hf (and --to timm without a suffix), a folder"
    )
    c.add_argument("--from", dest="src_layout", default="auto", choices=["auto", "official", "hf", "timm"],
                   help="layout of INPUT (default: %(default)s, detected; another value checks it)")  # fmt: skip
    c.add_argument("--to", dest="dst_layout", default="official", choices=["official", "hf", "timm"],
                   help="layout to write (default: %(default)s)")  # fmt: skip
    c.add_argument("--bands", nargs="+", action=CommaList, default=None,
                   help="adapt the patch embedding to these band names (B04 B03 B02 or B04,B03,B02)")  # fmt: skip
    c.add_argument("--src-bands", nargs="+", action=CommaList, default=None,
                   help="band names of the input (default: the bands it records, else R G B for a 3-band "
                   "input)")  # fmt: skip
    c.add_argument(
        "--fill",
        default=None,
        choices=["mean", "zeros"],
        help="kernel of bands matching none of the input's (default: such a band is an error)",
    )
    c.add_argument(
        "--subset",
        default="copy",
        choices=["copy", "rescale"],
        help="--bands a subset of the input's: copy their kernels as they are (default), or rescale them by "
        "input bands / kept bands (timm's adapt_input_conv rule)",
    )
    c.add_argument(
        "--sensor",
        default=None,
        help="sensor whose band names --bands uses (e.g. sentinel2_l2a, landsat8); without --bands, the output "
        "records its normalisation (for its bands, or --src-bands of them: as many as the checkpoint's input bands) "
        "unless the input records one",
    )
    c.add_argument(
        "--which",
        default=None,
        help="backbone inside a training checkpoint: teacher (default) or student, or a key prefix such as "
        "arch.student.backbone (refused for a file holding one backbone); in a geodino distill checkpoint: NAME "
        "(student NAME's EMA, what the run exports) or NAME.raw (its raw weights)",
    )
    c.add_argument("--overwrite", action="store_true", help="replace an existing output")
    c.add_argument("--expect-arch", default=None, help="fail unless the weights fit this architecture (e.g. vit_large)")
    c.add_argument("--expect-bands", type=whole_number(1), default=None,
                   help="fail unless the weights take this many bands")  # fmt: skip
    c.add_argument(
        "--local-cls-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="official output: write local_cls_norm (the SAT ViT-L's and 7B's local-crop CLS norm, which HF and timm "
        "do not store) as a copy of norm when the input lacks it, exact for inference (--no-local-cls-norm: write "
        "none). Default: re-created when the HF/timm input records it (geodino writes that) or is 7B-sized",
    )
    c.set_defaults(func=_convert)

    i = subparsers.add_parser(
        "info",
        help="list the architectures, or describe a backbone spec (arch, params, bands, patch size, keys)",
        description="Without SPEC: the architecture table with parameter counts. With SPEC (a checkpoint file, HF "
        "folder, arch:NAME or timm:NAME): its architecture, parameter count, bands, patch size and key count.",
    )
    i.add_argument("spec", nargs="?", default=None, help="backbone spec (optional)")
    i.add_argument(
        "--image-size",
        nargs="+",
        action=NumberList,
        default=None,
        metavar="H [W]",
        help="also show the token grid, token count and feature-map shape for an input of H x W pixels (one number: "
        "a square; or H,W)",
    )
    i.set_defaults(func=_info)


def _convert(args: argparse.Namespace) -> int:
    from geodino.cli import output_path
    from geodino.models.checkpoints.convert import convert_checkpoint

    output_path(args, "output", "geodino convert INPUT OUTPUT (or --out OUTPUT)")
    _check_band_names(args)
    out = convert_checkpoint(args.input, args.output, **options_for(convert_checkpoint, args))
    print(f"wrote {out} ({args.dst_layout} layout)")
    return 0


def _check_band_names(args: argparse.Namespace) -> None:
    """`--bands` and `--src-bands` are band names: numbers (`--bands 4 3 2 1`, embed's spelling of input bands)
    matched none of the checkpoint's names, and with `--fill mean` every band got the mean kernel with only a warning
    (a backbone spec's `?bands=4,3,2` is refused the same way, `parse_backbone_bands`)."""
    from geodino.data.band_args import NUMBERS_GO_TO_EMBED
    from geodino.errors import ConfigError

    for flag, names in (("--bands", args.bands), ("--src-bands", args.src_bands)):
        number = next((n for n in names or () if n.strip().lstrip("+-").replace(".", "", 1).isdigit()), None)
        if number is not None:
            raise ConfigError(
                f"{flag} {' '.join(names)}: geodino convert takes band names (e.g. --bands B04 B03 B02 B08 --sensor "
                f"sentinel2_l2a, or red,green,blue,nir), not numbers such as {number}; {NUMBERS_GO_TO_EMBED}"
            )


def _info(args: argparse.Namespace) -> int:
    from geodino.models.info import arch_table, describe, format_params

    if args.spec is None:
        rows = arch_table()
        head = f"{'arch':15s} {'dim':>5s} {'depth':>5s} {'heads':>5s} {'ffn':>9s} {'hidden':>6s} {'reg':>3s} "
        head += f"{'params':>11s} {'keys':>5s}  released weights"
        print(head)
        for r in rows:
            print(
                f"{r['arch']:15s} {r['embed_dim']:5d} {r['depth']:5d} {r['heads']:5d} {r['ffn']:>9s} "
                f"{r['ffn_hidden']:6d} {r['storage']:3d} {format_params(r['params']):>11s} {r['keys']:5d}  "
                f"{r['released'] or '-'}"
            )
        return 0
    from geodino.errors import CheckpointError

    info = describe(args.spec, image_size=args.image_size)
    broken = str(info.get("weights", "")).startswith("DO NOT LOAD: ")
    for k, v in info.items():
        if not (broken and k == "weights"):
            print(f"{k:15s} {format_params(v) if k == 'params' else v}")
    if broken:  # the rows above say what the file looks like; the error (exit 2) says why it would not load
        raise CheckpointError(str(info["weights"]).removeprefix("DO NOT LOAD: "))
    return 0
