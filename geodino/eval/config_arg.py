"""The `cfg` argument of the probe entry points (`run_classification`, `run_canopy`, ...): the task's config
dataclass, or a plain mapping of its keys (as one task of a suite YAML), read with `load_config`'s checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from geodino.errors import ConfigError

T = TypeVar("T")


def probe_config(cfg: Any, schema: type[T], entry: str) -> T:
    """`cfg` as a `schema` object: a mapping is read as `from_mapping` reads a config section (unknown keys and bad
    values are one line); a config dataclass is returned as it is (`dense.start_probe` names another probe's
    config); anything else (a YAML path, None) is one ConfigError naming `cfg` and how to build one. Before, a
    mapping or a path failed later on a missing attribute (`'dict' object has no attribute 'eval_split'`)."""
    if isinstance(cfg, Mapping):
        from geodino.config import from_mapping

        return from_mapping(schema, dict(cfg), f"the cfg of {entry}")
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        if not isinstance(cfg, schema) and not type(cfg).__name__.endswith("ProbeConfig"):
            raise ConfigError(f"{entry} takes cfg={schema.__name__}(...), not a {type(cfg).__name__}")
        return cfg  # type: ignore[return-value]
    raise ConfigError(
        f"{entry} takes cfg={schema.__name__}(...) or a mapping of its keys, got {type(cfg).__name__} {cfg!r:.80}; "
        f"from a YAML file: load_config({schema.__name__}, 'task.yaml') (geodino.config)"
    )
