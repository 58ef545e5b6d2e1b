"""`geodino probe`: run a frozen-probe suite on one backbone and write a results table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from geodino.cli import add_config_arguments

if TYPE_CHECKING:
    from geodino.eval.runner import SuiteConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `probe` sub-command."""
    from geodino.eval.runner import SuiteConfig

    p = subparsers.add_parser(
        "probe",
        help="frozen-backbone probes (kNN/linear, segmentation, canopy height, detection) -> results table",
        description=(
            "Run the probe tasks of a suite YAML (configs/eval/*.yaml) on a frozen backbone and write "
            "OUT/results.json, OUT/results.md and per-task plots. Data paths are config keys, e.g. "
            "tasks.eurosat_knn_linear.data.root=/data/eurosat."
        ),
    )
    p.add_argument(
        "--backbone",
        "-b",
        default=None,
        help="backbone spec: checkpoint path, HF folder, arch:vit_small, timm:NAME, baseline:colour (default: the "
        "suite's backbone key)",
    )
    p.add_argument("--out", "-o", default="probe_out", help="output folder (default: probe_out)")
    p.add_argument(
        "--device",
        default=None,
        help="torch device of the backbone: cpu, cuda, cuda:1, mps (the suite's device key, default cpu)",
    )
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bars (the suite's progress key), as embed and data curate take it",
    )
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="SPEC",
        help="also run the suite on SPEC (repeatable; e.g. baseline:colour, arch:vit_small?seed=0) into "
        "OUT/compare/, and write OUT/comparison.md: a column per backbone and each one's difference to --backbone",
    )
    p.add_argument(
        "--seeds",
        default=None,
        metavar="S,S,...",
        help="run the suite (and any --compare) once per seed (e.g. 0,1,2) into OUT/seed_<s>/, and write "
        "OUT/seeds.md: mean +- sample std over the seeds per task and metric (and the paired difference per --compare)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier probe in --out (default: refuse); its feature_cache/ is kept and "
        "re-used",
    )
    add_config_arguments(p, SuiteConfig)
    p.epilog += (
        "\n  tasks.<name>.type=classification|segmentation|canopy|detection, plus that task type's keys"
        "\n  (tasks.<name>.data.root=..., tasks.<name>.linear.lrs=[...], ...: see docs/probing.md)"
    )
    p.set_defaults(func=_probe)


def _probe(args: argparse.Namespace) -> int:
    from geodino.config import load_config
    from geodino.errors import ConfigError
    from geodino.eval.runner import SuiteConfig, locked_probe_output

    seeds = _seeds(args)
    try:
        cfg = load_config(SuiteConfig, args.config, _overrides(args))
    except ConfigError as exc:  # without --config it said "add a 'tasks:' mapping", of a suite never written
        if args.config is not None or not str(exc).startswith("the probe suite has no tasks"):
            raise
        from geodino.config import shipped_configs

        raise ConfigError(
            "no probe suite: pass --config SUITE.yaml, a shipped one by name "
            f"({', '.join(shipped_configs(SuiteConfig))}) or your own YAML with a 'tasks:' mapping"
        ) from exc
    # one run at a time into one --out: a second probe (or comparison) stops with one line instead of interleaving
    # its results, plots and comparison folders with the first one's. An --out holding an earlier probe's results
    # is refused by the run itself (run_suite, run_comparison, run_seeds: one check, from Python too) unless
    # --overwrite, before any backbone loads
    with locked_probe_output(args.out):
        if seeds:
            from geodino.eval.runner_seeds import run_seeds

            md = run_seeds(cfg, args.backbone, args.compare, seeds, args.out, overwrite=args.overwrite)
            print(md)
            print(md.read_text())
            return 0
        return _probe_locked(args, cfg)


def _seeds(args: argparse.Namespace) -> list[int]:
    """The `--seeds` list ([] without it); refused beside a `seed=` override (which one was meant?)."""
    from geodino.errors import ConfigError
    from geodino.eval.runner_seeds import parse_seeds

    if args.seeds is None:
        return []
    given = [o for o in args.overrides if o.split("=", 1)[0].strip() == "seed"]
    if given:
        raise ConfigError(f"--seeds {args.seeds} and {given[-1]} both set the seed; give one of them")
    return parse_seeds(args.seeds)


def _overrides(args: argparse.Namespace) -> list[str]:
    """The key=value overrides with `--device` as `device=` (as embed, data curate and viz attention take it) and
    `--no-progress` as `progress=false`; a flag with its key's override as well is refused (which one was meant?)."""
    import json

    from geodino.errors import ConfigError

    overrides = list(args.overrides)
    flags = {"device": (args.device, f"--device {args.device}"), "progress": (args.progress, "--no-progress")}
    for key, (value, flag) in flags.items():
        if value is None:
            continue
        given = [o for o in overrides if o.split("=", 1)[0].strip() == key]
        if given:
            raise ConfigError(f"{flag} and {given[-1]} both set {key}; give one of them")
        overrides.append(f"{key}={json.dumps(value if isinstance(value, bool) else str(value))}")
    return overrides


def _probe_locked(args: argparse.Namespace, cfg: SuiteConfig) -> int:
    """`geodino probe` while holding its output folder's lock."""
    from geodino.eval.runner import run_suite

    if args.compare:
        from geodino.eval.compare import run_comparison

        md = run_comparison(cfg, args.backbone, args.compare, args.out, overwrite=args.overwrite)
        print(md)
        print(md.read_text())
        return 0
    rows = run_suite(cfg, args.backbone, args.out, overwrite=args.overwrite)
    print(Path(args.out) / "results.md")
    from geodino.eval.results import format_value

    for r in rows:
        print(f"{r['task']:<24} {r['metric']:<22} {format_value(r['metric'], r['value'])}")
    return 0
