"""Command-line overrides of a list-valued key written with commas (`bands=1,2`, `bbox=10.1,59.9,10.3,60.0`,
`asset_bands=red,nir`), as numbers apart by spaces (`window="0 0 64 64"`, as the flags take them) or as one value
(`bands=4`), for `geodino.config.load_config`.

YAML reads `1,2` as the text "1,2", and OmegaConf refused it for a list key with "AnyNode is not a ListConfig"
(only the bracket form `bands=[1,2]` worked). A list key's comma text is now its items (each read as YAML: numbers
stay numbers, names text) and one value a list of one, as the flags of the same name read them; an empty item
(`bands=1,2,`) is one line asking for the values, commas between them.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from geodino.errors import ConfigError

__all__ = ["comma_list", "list_field"]


def _field_hint(schema: Any, key: str) -> Any:
    """The type hint of dotted `key` in dataclass `schema` (entries of a list as `sources[0].paths` or
    `sources.0.paths`), or None when the key is not a field."""
    from geodino.config_entries import INDEX

    cls, hint = schema, None
    parts = [p for p in INDEX.sub(r".\1", key).split(".") if p]
    for part in parts:
        if part.isdigit():  # an entry of the list `hint`: its item type
            args = typing.get_args(hint) if typing.get_origin(hint) is list else ()
            cls = args[0] if len(args) == 1 else None
            continue
        if cls is None or not dataclasses.is_dataclass(cls):
            return None
        try:
            hint = typing.get_type_hints(cls).get(part)
        except Exception:  # an annotation that does not resolve: no conversion
            return None
        if hint is None:
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        cls = inner[0] if typing.get_origin(hint) is not list and len(inner) == 1 else hint
    return hint if parts and not parts[-1].isdigit() else None


def list_field(schema: Any, key: str) -> bool:
    """Whether `key` is a list of plain values (`list[int] | None`, not a list of config entries or a union with
    text)."""
    hint = _field_hint(schema, key)
    options = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is not list else []
    lists = [hint] if typing.get_origin(hint) is list else options
    if not lists or any(typing.get_origin(a) is not list for a in lists):
        return False
    items = typing.get_args(lists[0])
    return not (items and dataclasses.is_dataclass(items[0]))


def comma_list(schema: Any, key: str, value: Any, item: str) -> Any:
    """`value` of override `item` as a list when `key` is a list of plain values and it came as comma text or one
    value; else unchanged (null stays null, a bracket list stays as it was)."""
    if value is None or isinstance(value, (list, dict)) or not list_field(schema, key):
        return value
    if isinstance(value, str) and not value.strip():  # `bands=`: OmegaConf said "AnyNode is not a ListConfig"
        raise ConfigError(
            f"override {item!r}: {key} is given no value; list the values ({key}=1,2 or {key}=[1,2]), or "
            f"{key}=null for none"
        )
    if isinstance(value, str) and "," not in value and len(value.split()) > 1 and all(map(_number, value.split())):
        value = ",".join(value.split())  # `window="0 0 64 64"`, as the flags take them: numbers apart by spaces
    if not isinstance(value, str) or "," not in value:
        return [value]
    parts = [p.strip() for p in value.split(",")]
    if not all(parts):
        raise ConfigError(
            f"override {item!r}: {key} has an empty value in {value!r}; list the values with one comma between "
            f"each ({key}={','.join(p for p in parts if p) or '1,2'}) or in brackets ({key}=[...])"
        )
    from omegaconf import OmegaConf

    return [OmegaConf.create(f"v: {p}")["v"] for p in parts]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
