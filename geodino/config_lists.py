"""Command-line overrides of a list-valued key written with commas (`bands=1,2`, `bbox=10.1,59.9,10.3,60.0`,
`asset_bands=red,nir`), as numbers apart by spaces (`window="0 0 64 64"`, as the flags take them) or as one value
(`bands=4`), for `geodino.config.load_config`.

YAML reads `1,2` as the text "1,2", and OmegaConf refused it for a list key with "AnyNode is not a ListConfig"
(only the bracket form `bands=[1,2]` worked). A list key's comma text is now its items (each read as YAML: numbers
stay numbers, names text) and one value a list of one, as the flags of the same name read them; an empty item
(`bands=1,2,`) is one line asking for the values, commas between them.

The other way round, a text key that also takes a list (embed's `layers`) reads a YAML list, a file's or an
override's, as its text (`text_lists`, at every merge); and a list key of paths that also takes one path
(field metadata `TEXT_AS_LIST`: the probes' `train_images: /data/plots/`) reads that text as a list of one.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any, cast

from geodino.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "LIST_AS_TEXT",
    "PATH_LIST",
    "TEXT_AS_LIST",
    "comma_list",
    "list_field",
    "one_or_list",
    "settle_path_lists",
    "text_lists",
]

LIST_AS_TEXT = "geodino_list_as_text"
"""Field metadata key: a text key that also takes a YAML list (embed's `layers: [4, 8]`); its value is a function
`(list, where) -> text` (the text the key takes, or one ConfigError line naming `where`)."""

TEXT_AS_LIST = "geodino_text_as_list"
"""Field metadata key (value True): a list key that also takes one text, read as a list of one (`""` as none);
the probes' file keys (`train_images: /data/plots/` is `[/data/plots/]`). Without it, text given to a list key is
refused, naming the bracket form."""

PATH_LIST = {TEXT_AS_LIST: True}
"""The metadata of a list-of-paths field: `field(default_factory=list, metadata=PATH_LIST)`."""


def one_or_list(value: Any) -> list[Any]:
    """A file key's value as a list: one path (text or `os.PathLike`) is a list of one, `""` and None none, a
    sequence its items; for values set in Python after the config was built (the YAML and override forms are read
    by `text_lists`)."""
    import os

    if value is None or (isinstance(value, str) and not value):
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


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

    return [cast("DictConfig", OmegaConf.create(f"v: {p}"))["v"] for p in parts]  # each a `v:` mapping


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_lists(schema: Any, data: Any, where: str) -> Any:
    """`data` (a YAML file's mapping or one override's) with the list or mapping given to a text key that takes a list
    (field metadata `LIST_AS_TEXT`) turned into its text, so that a file's `layers: [4, 8]` is read as the override
    `layers=[4,8]` is (OmegaConf refused it: "Cannot convert 'ListConfig' to string"); the rest unchanged."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(schema):
        return data
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # an annotation that does not resolve (a class defined in a function): the defaults' types
        hints = {}
    out = dict(data)
    for f in dataclasses.fields(schema):
        if f.name not in out:
            continue
        to_text = f.metadata.get(LIST_AS_TEXT)
        if to_text is not None and isinstance(out[f.name], list | dict):
            out[f.name] = to_text(out[f.name], where)
            continue
        if f.metadata.get(TEXT_AS_LIST) and isinstance(out[f.name], str):
            out[f.name] = one_or_list(out[f.name])
            continue
        hint = hints.get(f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        inner = [a for a in (hint, *typing.get_args(hint), type(default)) if dataclasses.is_dataclass(a)]
        if inner:
            out[f.name] = text_lists(inner[0], out[f.name], where)
    return out


def settle_path_lists(obj: Any) -> None:
    """`obj`'s `TEXT_AS_LIST` fields as lists of text, as a config file or override gives them: for a config built
    in Python (`CanopyProbeConfig(train_images="a.tif")` or a `Path`), so that it runs, and is recorded, as the same
    keys written in YAML."""
    import os

    for f in dataclasses.fields(obj):
        if f.metadata.get(TEXT_AS_LIST):
            value = getattr(obj, f.name)
            setattr(obj, f.name, [os.fspath(v) if isinstance(v, os.PathLike) else v for v in one_or_list(value)])
