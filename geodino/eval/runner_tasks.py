"""A probe suite's configuration and its tasks read into their configs: `SuiteConfig` (shared settings and the
`tasks` mapping), the task types and their entry points (`TASK_TYPES`, `task_entry`), and `parse_tasks`, which fills
each task's config dataclass from the suite (keys the runner reads itself taken out, the suite's seed, progress and
feature cache set) without running or loading anything. `geodino.eval.runner` re-exports these names."""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError, did_you_mean
from geodino.eval.runner_inputs import task_keys_named

TASK_TYPES: dict[str, tuple[str, str]] = {
    "classification": ("geodino.eval.classification", "run_classification"),
    "segmentation": ("geodino.eval.segmentation", "run_segmentation"),
    "canopy": ("geodino.eval.canopy", "run_canopy"),
    "detection": ("geodino.eval.detection", "run_detection"),
}
"""Task type -> (module, entry point). Each entry point is `run_<task>(backbone, cfg, out_dir) -> dict[str, float]`
and its `cfg` annotation names the task's config dataclass."""


@dataclass
class SuiteConfig:
    """A probe suite: shared settings plus `tasks`, a mapping of task name -> {type: ..., <task config keys>}.

    Task keys are those of the task's config dataclass (`geodino probe --help` lists the suite keys; each task
    type's keys are in docs/probing.md). Override any of them from the command line with dotted keys, e.g.
    `tasks.eurosat_knn_linear.data.root=/data/eurosat`.
    """

    name: str = "probe"
    backbone: str = ""  # backbone spec; the --backbone option overrides it
    backbone_bands: list[str] = field(default_factory=list)  # bands to adapt the backbone to ([] = as it is)
    backbone_sensor: str = ""  # sensor whose mean/std the backbone expects ("" = the backbone's own)
    seed: int = 0
    device: str = "cpu"
    cache_dir: str = ""  # feature cache; "" = OUT/feature_cache
    only: list[str] = field(default_factory=list)  # run only these task names ([] = all)
    progress: bool = True
    deterministic: bool = True  # torch.use_deterministic_algorithms (warn only) for reproducible heads
    tasks: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.tasks:
            raise ConfigError("the probe suite has no tasks: add a 'tasks:' mapping (see configs/eval/*.yaml)")
        for name, t in self.tasks.items():
            if not isinstance(t, dict) or "type" not in t:
                raise ConfigError(
                    f"task {name!r} needs a type: set tasks.{name}.type to one of {', '.join(TASK_TYPES)}"
                )
            if t["type"] not in TASK_TYPES:
                close = did_you_mean(t["type"], TASK_TYPES)
                hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(TASK_TYPES)}"
                raise ConfigError(f"tasks.{name}.type={t['type']!r} is not a task type; {hint}")
        unknown = [n for n in self.only if n not in self.tasks]
        if unknown:
            raise ConfigError(f"only={unknown[0]!r} is not a task of this suite; tasks: {', '.join(self.tasks)}")


def task_entry(task_type: str) -> tuple[Any, type]:
    """The entry point and config dataclass of a task type (imported lazily)."""
    module_name, func_name = TASK_TYPES[task_type]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"task type {task_type!r} is not available in this install ({exc})") from exc
    fn = getattr(module, func_name)
    hints = typing.get_type_hints(fn)
    schema = hints.get("cfg")
    if not isinstance(schema, type) or not dataclasses.is_dataclass(schema):
        raise RuntimeError(f"{module_name}.{func_name} must annotate cfg with its config dataclass")
    return fn, schema


def task_config(schema: type, data: dict[str, Any], where: str) -> Any:
    """Fill a task's config dataclass from the suite's mapping, with the same errors as `geodino.config`."""
    from geodino.config import from_mapping

    return from_mapping(schema, {k: v for k, v in data.items() if k not in RUNNER_TASK_KEYS}, where)


def _set_if_present(cfg: Any, path: str, value: Any, only_if_empty: bool = False) -> None:
    *parents, last = path.split(".")
    obj = cfg
    for p in parents:
        obj = getattr(obj, p, None)
        if obj is None:
            return
    if hasattr(obj, last) and (not only_if_empty or not getattr(obj, last)):
        setattr(obj, last, value)


@dataclass
class ParsedTask:
    """One task of a suite, ready to run: entry point, its config, and what the runner adds around it."""

    fn: Any
    cfg: Any
    type: str
    data: Any = None  # a DatasetConfig the runner builds and passes as train_data/val_data (see _call_task)
    backbone_bands: list[str] = field(default_factory=list)  # per-task band adaptation ([] = the suite's)
    backbone_sensor: str = ""


RUNNER_TASK_KEYS = ("type", "backbone_bands", "backbone_sensor")
"""Task keys read by the runner itself (not passed to the task's config)."""


def parse_tasks(cfg: SuiteConfig, out: Path, names: list[str] | None = None) -> dict[str, ParsedTask]:
    """name -> ParsedTask for the suite's tasks (all configs checked; nothing is run or loaded)."""
    from geodino.eval.datasets import DatasetConfig

    parsed: dict[str, ParsedTask] = {}
    for name in names if names is not None else list(cfg.tasks):
        raw = dict(cfg.tasks[name])
        bands = [str(b) for b in (raw.pop("backbone_bands", None) or cfg.backbone_bands)]
        sensor = str(raw.pop("backbone_sensor", None) or cfg.backbone_sensor)
        fn, schema = task_entry(raw["type"])
        data = None
        if "data" in raw and "data" not in {f.name for f in dataclasses.fields(schema)}:
            data = task_config(DatasetConfig, raw.pop("data"), f"tasks.{name}.data")
        if "seed" in raw and raw["seed"] != cfg.seed:  # it was replaced by the suite's without a word
            raise ConfigError(
                f"tasks.{name}.seed={raw['seed']}: every task runs with the suite's seed ({cfg.seed}); set the suite "
                f"key seed={raw['seed']} (or --seeds for several) and drop tasks.{name}.seed"
            )
        with task_keys_named(name, schema):  # a bad value: one line naming tasks.<name>.<key>
            tcfg = task_config(schema, raw, f"tasks.{name}")
            if hasattr(tcfg, "train_fraction"):  # a label budget out of range
                from geodino.eval.label_budget import check_budget

                check_budget(tcfg.train_fraction, getattr(tcfg, "train_per_class", 0))  # per class: classification
        _set_if_present(tcfg, "seed", cfg.seed)
        _set_if_present(tcfg, "progress", cfg.progress)
        _set_if_present(tcfg, "features.cache_dir", cfg.cache_dir or str(out / "feature_cache"), only_if_empty=True)
        parsed[name] = ParsedTask(fn, tcfg, raw["type"], data, bands, sensor)
    return parsed


def suite_config(cfg: Any) -> SuiteConfig:
    """`cfg` as a SuiteConfig: a mapping (the suite YAML's content) is read with `load_config`'s checks."""
    if isinstance(cfg, SuiteConfig):
        return cfg
    if isinstance(cfg, dict):
        from geodino.config import from_mapping

        return from_mapping(SuiteConfig, cfg, "the suite")
    raise ConfigError(
        f"the suite config must be a SuiteConfig (load_config(SuiteConfig, 'suite.yaml')) or a mapping, got "
        f"{type(cfg).__name__}"
    )
