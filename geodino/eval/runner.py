"""A probe suite: one or many probe tasks on one frozen backbone, ending in a results table.

`run_suite(cfg, backbone_spec, out_dir)` runs each task of `cfg.tasks` (classification, segmentation, canopy
height, detection) by calling its module's `run_<task>(backbone, task_cfg, task_dir) -> dict[str, float]`, then
writes `out_dir/results.json` and `out_dir/results.md` (task, dataset, metric, value, backbone, config hash) next
to each task's own plots (`results.py`: those files, written and read). Every task is seeded from the suite seed,
so a rerun gives the same numbers. The suite's config and its tasks, read into their configs, are
`runner_tasks.py`'s (`SuiteConfig`, `parse_tasks`, ...; re-exported here).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gc
import hashlib
import importlib
import inspect
import json
import random
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError
from geodino.eval.probe_lock import locked_probe_output as locked_probe_output  # re-exported (geodino probe)
from geodino.eval.results import INFO_METRICS as INFO_METRICS  # re-exported: the results files' home
from geodino.eval.results import add_intervals, dataset_label, write_results
from geodino.eval.results import metric_kind as metric_kind
from geodino.eval.results import read_results as read_results
from geodino.eval.runner_inputs import precheck_inputs, task_keys_named
from geodino.eval.runner_tasks import RUNNER_TASK_KEYS as RUNNER_TASK_KEYS  # re-exported: the tasks' home
from geodino.eval.runner_tasks import TASK_TYPES, ParsedTask, SuiteConfig, parse_tasks, suite_config
from geodino.eval.runner_tasks import task_config as task_config
from geodino.eval.runner_tasks import task_entry as task_entry
from geodino.eval.seeding import keeps_global_rng

if typing.TYPE_CHECKING:
    from geodino.eval.layer_choice import LayerError

NOT_HASHED = {"cache_dir", "progress", "plots", "num_workers", "cache_features"}
"""Config keys that change where or how visibly a task runs, not its numbers: left out of the config hash."""


def config_hash(obj: Any) -> str:
    """Short sha256 of a config (dataclass or mapping), stable across runs: identifies a row's settings."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(obj)) if dataclasses.is_dataclass(obj) else obj

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in NOT_HASHED}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return hashlib.sha256(json.dumps(strip(data), sort_keys=True, default=str).encode()).hexdigest()[:12]


def _hashed_task(task: dict[str, Any]) -> dict[str, Any]:
    """A task config as hashed: a classification label budget at its default (all labels) is left out, so a task
    without one keeps the hash it had before the budget keys existed."""
    defaults = {"train_fraction": 1.0, "train_per_class": 0}
    return {k: v for k, v in task.items() if not (k in defaults and v == defaults[k])}


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    import numpy as np
    import torch

    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _call_task(fn: Any, backbone: Any, tcfg: Any, out: Path, data: Any) -> dict[str, float]:
    """Call an entry point; when the suite gave a `data` adapter that its config has no key for, build the
    train/val datasets here and pass them as `train_data`/`val_data`/`class_names` (the entry points accept
    probe samples that way)."""
    if data is None:
        return fn(backbone, tcfg, out)
    from geodino.eval.datasets import build_dataset

    params = inspect.signature(fn).parameters
    if "train_data" not in params:
        raise ConfigError(f"task config has a 'data' key but {fn.__name__} takes no dataset; use its own keys")
    train, val = build_dataset(data, "train", backbone=backbone), build_dataset(data, "val", backbone=backbone)
    kwargs: dict[str, Any] = {"train_data": train, "val_data": val}
    if "class_names" in params:
        kwargs["class_names"] = list(train.classes)
    return fn(backbone, tcfg, out, **kwargs)


def load_probe_backbone(spec: str, bands: list[str] | None, sensor: str | None, device: str) -> Any:
    """A frozen backbone for probing (`geodino.backbones.load_backbone`)."""
    from geodino.backbones import load_backbone

    return load_backbone(spec, bands=bands or None, sensor=sensor or None, device=device)


@dataclass
class PreparedSuite:
    """A suite checked and ready to run on one backbone: tasks parsed, data folders opened, backbones loaded, and
    each task's head checked against its backbone (`skipped`: task -> why it cannot run there)."""

    cfg: SuiteConfig
    spec: str
    out: Path
    names: list[str]  # the tasks to run, in order
    parsed: dict[str, ParsedTask]
    backbones: dict[tuple, Any]  # (backbone_bands, backbone_sensor) -> loaded backbone
    skipped: dict[str, str] = field(default_factory=dict)


def _backbone_key(task: ParsedTask) -> tuple:
    return (tuple(task.backbone_bands), task.backbone_sensor)


def task_layer_problem(task: ParsedTask, backbone: Any) -> LayerError | None:
    """The LayerError of a task whose head needs more blocks than `backbone` has (four-layer UPerNet/DPT heads on
    a one-block baseline, a block index past the last), else None. Other config errors of the task raise."""
    from geodino.eval.layer_choice import LayerError

    validate = getattr(task.cfg, "validate", None)
    if validate is not None:
        validate()
    head_layers = getattr(importlib.import_module(TASK_TYPES[task.type][0]), "head_layers", None)
    if head_layers is None:
        return None
    try:
        head_layers(backbone, task.cfg)
    except LayerError as exc:
        return exc
    return None


def load_suite_backbones(
    cfg: SuiteConfig, spec: str, parsed: dict[str, ParsedTask], names: list[str]
) -> dict[tuple, Any]:
    """(backbone_bands, backbone_sensor) -> the backbone `spec` loaded for them, over the tasks `names`: one load per
    pair, shared by the tasks that use it."""
    backbones: dict[tuple, Any] = {}
    for name in names:
        key = _backbone_key(parsed[name])
        if key not in backbones:
            backbones[key] = load_probe_backbone(spec, list(key[0]), key[1], cfg.device)
    return backbones


def release_backbones(suite: PreparedSuite | None = None) -> None:
    """Drop `suite`'s loaded backbones (if given) and hand their memory back: a cycle collection, then the CUDA
    allocator's cached blocks where CUDA is in use, so the next backbone loads into the room this one had."""
    import torch

    if suite is not None:
        suite.backbones.clear()
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _given_backbone(backbone: Any, cfg: SuiteConfig, parsed: dict[str, ParsedTask], names: list[str]) -> dict:
    """The backbones of a suite run on an already loaded backbone: it serves every task that takes it as it is; a
    task with its own bands or sensor needs the backbone re-loaded from its spec, which only a spec string allows."""
    from geodino.eval.backbone_arg import probe_backbone

    backbone = probe_backbone(backbone)
    other = [n for n in names if _backbone_key(parsed[n]) != ((), "")]
    if other:
        spec = getattr(backbone, "spec", "")
        example = f" (this one's is {spec!r})" if spec and not str(spec).startswith("<") else ""
        raise ConfigError(
            f"task{'s' if len(other) > 1 else ''} {', '.join(other)} set backbone_bands/backbone_sensor, which load "
            f"the backbone again from its spec; pass the spec string{example} instead of a loaded backbone"
        )
    return {((), ""): backbone}


def prepare_suite(
    cfg: SuiteConfig | dict[str, Any],
    backbone_spec: Any = None,
    out_dir: str | Path = "probe_out",
    *,
    skip_unfit: bool = False,
) -> PreparedSuite:
    """Check a suite on one backbone before anything runs: parse every task, open every named dataset, load the
    backbone(s), check each task's head against its backbone. A task the backbone cannot run stops here with one
    line naming the task(s) and backbone, or, with `skip_unfit` (comparison backbones), is skipped with a warning.
    `backbone_spec`: a spec string, or a loaded FrozenBackbone when no task sets its own bands or sensor."""
    import warnings

    from geodino.eval.layer_choice import blocks_text
    from geodino.io import make_dirs

    cfg = suite_config(cfg)
    given = None if backbone_spec is None or isinstance(backbone_spec, str | Path) else backbone_spec
    spec = str(getattr(given, "spec", type(given).__name__)) if given is not None else backbone_spec or cfg.backbone
    if not spec:
        raise ConfigError(
            "no backbone: pass --backbone SPEC (backbone= in Python): a checkpoint, arch:vit_small, timm:<name>, ..."
        )
    spec = str(spec)
    cfg.validate()
    out = make_dirs(Path(out_dir).expanduser())
    names = [n for n in cfg.tasks if not cfg.only or n in cfg.only]
    # Parse every task config and open every named dataset before loading the backbone: a typo or a missing
    # folder fails in a second, not after an hour.
    parsed = parse_tasks(cfg, out, names)
    for n, t in parsed.items():
        with task_keys_named(n, type(t.cfg)):
            precheck_inputs(n, t.type, t.cfg, t.data)  # named datasets and file keys (runner_inputs)
    if given is not None:
        backbones = _given_backbone(given, cfg, parsed, names)
    else:
        backbones = load_suite_backbones(cfg, spec, parsed, names)
    problems = {}
    for n in names:
        with task_keys_named(n, type(parsed[n].cfg)):  # a bad head or layers value names tasks.<n>.<key>
            if (exc := task_layer_problem(parsed[n], backbones[_backbone_key(parsed[n])])) is not None:
                problems[n] = exc
    skipped: dict[str, str] = {}
    if problems and not skip_unfit:
        blocks = blocks_text(next(iter(problems.values())).n_blocks)
        listed = ", ".join(f"{n} ({e.reason})" for n, e in problems.items())
        fixes = ", ".join(" and ".join(f"tasks.{n}.{f}" for f in e.fixes) for n, e in problems.items())
        rest = [n for n in names if n not in problems]
        leave_out = f", leave them out with only=[{','.join(rest)}]" if rest else ""
        deeper = "at least 4 blocks" if any(e.fix == "head=linear" for e in problems.values()) else "more blocks"
        raise ConfigError(
            f"backbone {spec} has {blocks}, too few for task{'s' if len(problems) > 1 else ''} {listed}; "
            f"set {fixes}{leave_out}, or use a backbone with {deeper}"
        )
    for n, e in problems.items():
        skipped[n] = f"{e.reason}; the backbone has {blocks_text(e.n_blocks)}"
        warnings.warn(f"skipping task {n} on backbone {spec}: {skipped[n]}", stacklevel=2)
    names = [n for n in names if n not in problems]
    return PreparedSuite(cfg, spec, out, names, parsed, backbones, skipped)


def run_suite(
    cfg: SuiteConfig | dict[str, Any],
    backbone_spec: Any = None,
    out_dir: str | Path = "probe_out",
    *,
    skip_unfit: bool = False,
    backbone: Any = None,
    overwrite: bool = False,
) -> list[dict]:
    """Run every task of the suite on one backbone; write results.json and results.md; return the rows (one dict
    per task and metric: task, type, metric, value, ci95, n_eval, seed, backbone, fingerprint, config_hash, dataset,
    kind, seconds).

    `cfg`: a SuiteConfig or the suite YAML's mapping; `backbone_spec` (or `backbone=`, as the other entries name it):
    a spec string (loaded once per task band/sensor setting), or a loaded FrozenBackbone, used as it is (no task may
    then set backbone_bands/backbone_sensor).

    Every task is checked against the backbone first (`prepare_suite`); with `skip_unfit` a task the backbone
    cannot run is skipped (named in results.json's `skipped`) instead of stopping the suite.

    One run at a time per `out_dir` (`locked_output`): a second run into it stops with one line, as `geodino probe`
    does, instead of interleaving its results and plots with the first one's. An `out_dir` holding an earlier
    probe's results is refused before any backbone loads unless `overwrite` (`probe_output.check_probe_output`, the
    check `geodino probe --overwrite` makes); `overwrite` keeps its feature_cache/."""
    from geodino.eval.probe_output import check_probe_output

    if backbone is not None and backbone_spec is not None:
        raise ConfigError("pass the backbone once: backbone= or backbone_spec= (the same argument)")
    with locked_probe_output(out_dir):
        check_probe_output(out_dir, overwrite=overwrite)
        return run_prepared(
            prepare_suite(cfg, backbone if backbone is not None else backbone_spec, out_dir, skip_unfit=skip_unfit)
        )


@keeps_global_rng
def run_prepared(suite: PreparedSuite) -> list[dict]:
    """Run the tasks of a prepared suite (see `prepare_suite`); write results.json and results.md (holding the output
    folder's lock: see `run_suite`)."""
    import torch

    from geodino.eval.features import forget_unwritable_caches

    forget_unwritable_caches()  # a cache folder that was full in an earlier run is tried again
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        with locked_probe_output(suite.out):
            return _run_tasks(suite)
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)


def _single_label_test_size(task_type: str, task_dir: Path) -> int:
    """The number of test images a single-label classification task scored (its classification.json's `n_eval`),
    for the Wilson intervals of its top-1/top-5 rows; 0 (no interval) for other tasks and multi-label sets."""
    path = task_dir / "classification.json"
    if task_type != "classification" or not path.is_file():
        return 0
    report = json.loads(path.read_text())
    return 0 if report.get("multilabel") else int(report.get("n_eval") or 0)


def _run_tasks(suite: PreparedSuite) -> list[dict]:
    from geodino.config import to_dict
    from geodino.progress import progress_bar

    cfg, spec, out, parsed = suite.cfg, suite.spec, suite.out, suite.parsed
    fingerprint, weights = "", None
    rows: list[dict[str, Any]] = []
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    for stale in ("comparison.md", "comparison.json"):  # an earlier --compare run's: its main column was the
        (out / stale).unlink(missing_ok=True)  # results replaced now (--compare writes a new one after this run)
    if (out / "results.json").exists() or not suite.names:
        # an earlier run's table is replaced at once (with this run's, empty so far): a rerun that fails in its
        # first task must not leave it looking current; a fresh folder gets nothing until a task finishes, so a
        # failed first run leaves no output behind. Every task skipped: the results still say why.
        write_results(out, cfg, spec, fingerprint, rows, started, parsed, suite.skipped, suite.names)
    bar = progress_bar(suite.names, desc=f"probe {cfg.name}", unit="task", disable=not cfg.progress)
    for i, name in enumerate(bar):
        task = parsed[name]
        tcfg, data = task.cfg, task.data
        backbone = suite.backbones[_backbone_key(task)]
        task_fp = str(getattr(backbone, "fingerprint", ""))
        fingerprint, weights = fingerprint or task_fp, weights or getattr(backbone, "weights_sha256", None)
        bar.set_postfix_str(name)
        seed_everything(cfg.seed, cfg.deterministic)
        t0 = time.perf_counter()
        with task_keys_named(name, type(tcfg)):  # its errors name tasks.<name>.<key> (runner_inputs)
            metrics = _call_task(task.fn, backbone, tcfg, out / name, data)
        elapsed = time.perf_counter() - t0
        h = config_hash(
            {
                "task": _hashed_task(to_dict(tcfg)),
                "data": to_dict(data) if data is not None else None,
                "backbone_bands": task.backbone_bands,
                "backbone_sensor": task.backbone_sensor,
            }
        )
        task_rows: list[dict[str, Any]] = []
        for metric, value in metrics.items():
            task_rows.append(
                {
                    "task": name,
                    "type": task.type,
                    "dataset": dataset_label(tcfg, data),
                    "metric": metric,
                    "kind": metric_kind(metric),
                    "value": float(value),
                    "backbone": spec,
                    "fingerprint": task_fp,
                    "config_hash": h,
                    "seed": cfg.seed,
                    "seconds": round(elapsed, 2),
                }
            )
        add_intervals(task_rows, _single_label_test_size(task.type, out / name))
        rows += task_rows
        pending = suite.names[i + 1 :]  # marked unfinished until the last task is in
        write_results(out, cfg, spec, fingerprint, rows, started, parsed, suite.skipped, pending, weights)
    return rows
