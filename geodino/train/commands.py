"""CLI of the training part: `geodino pretrain`, `geodino distill`, `geodino export`.

Handlers are thin calls of `geodino.train.pretrain.pretrain`, `geodino.train.distill.distill` and
`geodino.train.checkpointing.export`; heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from geodino.errors import CheckpointError
from geodino.train.leave_group import leave_process_group


def register(subparsers: Any) -> None:
    """Add the pretrain, distill and export sub-commands."""
    from geodino.cli import add_config_arguments, add_output
    from geodino.train.config import PretrainConfig

    p = subparsers.add_parser(
        "pretrain",
        help="DINOv3 self-supervised pretraining (DINO + iBOT + KoLeo, Gram anchoring, high-res stages)",
        # the example runs as written (demo.yaml alone reads demo_out/data/scene, which only `geodino demo` writes);
        # its indented lines are kept as written (cli_format.HelpFormatter), so it can be pasted into a shell
        description="Train a ViT with the DINOv3 recipe (docs/pretraining.md).\n\n"
        "example, on a folder DIR of RGB GeoTIFFs:\n"
        "  geodino pretrain -c demo trainer.max_steps=20 --out runs/smoke \\\n"
        "    'data.sources=[{type: raster, paths: [DIR], sensor: maxar, tile_size: 64}]'",
    )
    add_config_arguments(p, PretrainConfig)
    _add_out(p)
    p.set_defaults(func=_pretrain)

    d = subparsers.add_parser(
        "distill",
        help="distill a frozen teacher (official or your own) into one or more smaller ViTs",
        description="Distill a frozen teacher into one or more students with DINO + iBOT patch distillation + "
        "KoLeo (docs/distillation.md).\n\n"
        "example, a pretrain export into a half-width ViT on a folder DIR of image chips:\n"
        "  geodino distill -c small_vit_tiny_half teacher.spec=runs/smoke/export/teacher.pth \\\n"
        "    'data.sources=[{type: images, paths: [DIR], sensor: imagenet}]'",
    )
    from geodino.train.distill.config import DistillConfig

    add_config_arguments(d, DistillConfig)
    _add_out(d)
    d.set_defaults(func=_distill)

    e = subparsers.add_parser(
        "export",
        help="write a training checkpoint's teacher backbone in the official layout (.pth, .safetensors) + heads",
        description="Export CKPT (runs/NAME/checkpoints/last.ckpt) to OUT.pth, OUT.safetensors, OUT.heads.pth and "
        "OUT.stac.json (a STAC item describing the backbone). A geodino distill checkpoint's students are written by "
        "geodino convert CKPT OUT --which NAME.",
    )
    e.add_argument("ckpt", help="a checkpoint written by geodino pretrain")
    add_output(e, "out", "output backbone path, e.g. exports/sat_vits16.pth")
    e.add_argument(
        "--which", choices=("teacher", "student"), default="teacher", help="EMA teacher (default) or student"
    )
    e.add_argument("--overwrite", action="store_true", help="replace existing output files")
    e.set_defaults(func=_export)


def _add_out(parser: argparse.ArgumentParser) -> None:
    """`--out/-o RUN` as the other commands name their output: the `output_dir=RUN` override, said shorter."""
    parser.add_argument(
        "--out", "-o", default=None, metavar="RUN", help="run folder: the output_dir key (default: the config's)"
    )


def _overrides(args: argparse.Namespace) -> list[str]:
    """The key=value overrides with `--out` as `output_dir=` (quoted: any path is text); both given is refused."""
    import json

    from geodino.errors import ConfigError

    overrides = list(args.overrides)
    if args.out is None:
        return overrides
    given = [o for o in overrides if o.split("=", 1)[0].strip() == "output_dir"]
    if given:
        raise ConfigError(f"--out {args.out} and {given[-1]} both set the run folder; give one of them")
    return [*overrides, f"output_dir={json.dumps(str(args.out))}"]


def _pretrain(args: argparse.Namespace) -> int:
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, args.config, _overrides(args))
    out = pretrain(cfg)
    if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0:
        from geodino.train.curves import describe_loss, loss_summary
        from geodino.train.data_note import data_note

        print(f"geodino: pretraining done: {out}{data_note(out)}")  # "; N corrupt images replaced" when some were
        loss = loss_summary(out)
        if loss:  # where the DINO loss went against ln K: the first thing to look at (curves.png shows why)
            curves = out / "curves.png"
            print(f"geodino: DINO loss {describe_loss(loss)}" + (f"; curves: {curves}" if curves.exists() else ""))
        export = out / "export" / "teacher.pth"
        if cfg.checkpoint.export_at_end and export.exists():  # what the next command takes (--backbone, init_from)
            print(f"geodino: backbone export: {export} (+ .safetensors, .heads.pth); use it as --backbone {export}")
    return leave_process_group(0, finished=True)


def _distill(args: argparse.Namespace) -> int:
    from geodino.config import load_config
    from geodino.train.distill import DistillConfig, distill

    cfg = load_config(DistillConfig, args.config, _overrides(args))
    out = distill(cfg)
    if int(os.environ.get("RANK", "0") or 0) == 0:
        from geodino.train.data_note import data_note

        done = ", ".join(f"{name} -> {path}" for name, path in out.items())  # each student's export
        # "; N corrupt images replaced" when some were, as pretraining's line says
        print(f"geodino: distillation done: {done}{data_note(Path(cfg.output_dir).expanduser())}")
    return leave_process_group(0, finished=True)


def _distill_refusal(ckpt: str, out: str) -> CheckpointError | None:
    """The line `geodino export` stops with on a `geodino distill` checkpoint (None for any other file): it holds
    students, which `geodino convert CKPT OUT --which NAME` writes (export said only "not written by geodino
    pretrain")."""
    from geodino.models.checkpoints.distill import is_distill_checkpoint
    from geodino.models.checkpoints.files import read_file

    try:  # the one safe reader (memory-mapped: only the students' names are read)
        obj = read_file(ckpt)[0]
    except Exception:  # a folder, another format: export's own line stands
        return None
    if not is_distill_checkpoint(obj):
        return None
    names = [str(k) for k in obj["students"]] or ["NAME"]
    return CheckpointError(
        f"checkpoint {ckpt} is a geodino distill checkpoint (students: {', '.join(names)}), which export does not "
        f"read; write a student's backbone with `geodino convert {ckpt} {out} --which {names[0]}` (its EMA, what the "
        f"run exports; --which {names[0]}.raw for its raw weights)"
    )


def _backbone_refusal(ckpt: str, out: str) -> CheckpointError | None:
    """The line `geodino export` stops with on a file or folder that already is a backbone (an export, a converted
    HF/timm folder, an official release; None for anything else): export said it was "not written by geodino
    pretrain", or, for a timm or HF folder, that it "has no meta.pt" (a sharded checkpoint's)."""
    import warnings

    from geodino.models.checkpoints import read_backbone_weights

    try:
        with warnings.catch_warnings():  # what the file lacks is beside the point here: one line
            warnings.simplefilter("ignore")
            layout = read_backbone_weights(ckpt).layout
    except Exception:  # not a backbone either: export's own line stands
        return None
    return CheckpointError(
        f"{ckpt} is already a backbone ({layout} layout), not a training checkpoint, which export reads "
        f"(runs/NAME/checkpoints/last.ckpt); use it as it is (--backbone {ckpt}), or write it in another layout with "
        f"`geodino convert {ckpt} {out}` (--to hf / --to timm)"
    )


def _export(args: argparse.Namespace) -> int:
    """Export under the output's lock, taken before the checkpoint is read: a second export onto the same name
    stops with one line at once, not after reading a whole checkpoint (`save_export` takes the same lock: nested,
    a no-op)."""
    from geodino.cli import output_path
    from geodino.models.checkpoints import export_paths
    from geodino.models.checkpoints.stac_item import export_item_path
    from geodino.run_lock import locked_output
    from geodino.train.checkpointing import export

    output_path(args, "out", "geodino export CKPT OUT.pth (or --out OUT.pth)")
    with locked_output(export_paths(args.out)[0].with_suffix(""), what="export"):
        try:
            paths = export(args.ckpt, args.out, which=args.which, overwrite=args.overwrite)
        except CheckpointError as exc:
            raise _distill_refusal(args.ckpt, args.out) or _backbone_refusal(args.ckpt, args.out) or exc from None
    for p in [*paths, export_item_path(paths[0])]:  # the weights, the heads and the STAC item
        print(p)
    return 0
