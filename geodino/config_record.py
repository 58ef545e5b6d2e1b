"""Which keys a config's YAML file and overrides set: `load_config` records them on the config it returns.

A key left at its default and a key written with the default's value give the same dataclass, yet they mean
different things to a warning such as "the overhead flips apply because you did not choose" (`set_keys`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["SET_KEYS_ATTR", "dotted_keys", "record_set_keys", "set_keys"]

SET_KEYS_ATTR = "_geodino_set_keys"
"""The attribute of a config object that holds its recorded keys (not a dataclass field: never saved)."""


def dotted_keys(data: Any, prefix: str = "") -> set[str]:
    """The dotted leaf keys of a nested mapping (`{crops: {vflips: false}}`: `crops.vflips`); a list is one key
    (`data.sources`), an empty mapping its own key."""
    if isinstance(data, dict) and data:
        return {k for name, value in data.items() for k in dotted_keys(value, f"{prefix}{name}.")}
    return {prefix[:-1]} if prefix else set()


def record_set_keys(cfg: Any, layers: Iterable[Any]) -> Any:
    """`cfg` with the keys its `layers` set recorded: each layer a mapping (a YAML file's, its `_base_` files merged
    in, or one override's) or a dotted key (one entry of a list, `data.sources.0.paths`)."""
    keys: set[str] = set()
    for layer in layers:
        keys |= {layer} if isinstance(layer, str) else dotted_keys(layer)
    try:
        object.__setattr__(cfg, SET_KEYS_ATTR, frozenset(keys))
    except (AttributeError, TypeError):  # a schema with __slots__: its set keys stay unknown (None)
        pass
    return cfg


def set_keys(cfg: Any) -> frozenset[str] | None:
    """The dotted keys `load_config`'s file (its `_base_` files too) and overrides set on `cfg`; None for a config
    built another way (a dataclass made in Python, `dataclasses.replace`), whose set keys are unknown."""
    return getattr(cfg, SET_KEYS_ATTR, None)
