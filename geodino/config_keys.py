"""Unknown config keys: every dotted key a dataclass schema takes, and the one-line message that names the
closest ones (split from config.py, which reads and merges the files)."""

from __future__ import annotations

import dataclasses
from typing import Any

from geodino.errors import did_you_mean


def _flat_keys(schema: Any, prefix: str = "") -> list[str]:
    """All dotted keys of a dataclass schema (recursing into nested dataclasses, and into the entries of lists of
    dataclasses as `name[i].key`, e.g. data.sources[i].tile_size)."""
    import typing

    try:
        hints = typing.get_type_hints(schema if isinstance(schema, type) else type(schema))
    except Exception:  # an annotation that does not resolve: list entries are then just not suggested
        hints = {}
    keys: list[str] = []
    for f in dataclasses.fields(schema):
        name = f"{prefix}{f.name}"
        keys.append(name)
        sub = f.type if isinstance(f.type, type) else None
        default = _field_default(f)
        hint = hints.get(f.name)
        args = typing.get_args(hint) if typing.get_origin(hint) is list else ()
        if dataclasses.is_dataclass(default):
            keys.extend(_flat_keys(default, name + "."))
        elif sub is not None and dataclasses.is_dataclass(sub):
            keys.extend(_flat_keys(sub, name + "."))
        elif len(args) == 1 and dataclasses.is_dataclass(args[0]):
            keys.extend(_flat_keys(args[0], name + "[i]."))
    return keys


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def unknown_key_message(key: str, schema: type, where: str, node: Any = None) -> str:
    """One line for an unknown key of `schema` in `where`: the closest keys (also a misnamed section's full keys
    from `node`, the data read), or, for a whole config file read as one of its sections, which class reads it."""
    keys, data, fields = _flat_keys(schema), node, {f.name for f in dataclasses.fields(schema)}
    for part in key.split("."):  # `node`: the data merged, to match a misnamed section's full keys (trainer.max_steps
        node = node.get(part) if isinstance(node, dict) else None  # for distillation's train.max_steps)
    for leaf in _leaves(node, key) if isinstance(node, dict) else []:
        if close := did_you_mean(leaf, keys, n=3):
            return f"unknown config key {leaf!r} in {where}; did you mean {', '.join(repr(c) for c in close)}?"
    close = did_you_mean(key, keys, n=3)
    if not close and "." not in key:  # a key of a list entry (data.sources[i]) comes without its path
        leaves = {k.rsplit(".", 1)[-1]: k for k in keys if "[i]." in k}
        close = [leaves[c] for c in did_you_mean(key, list(leaves), n=3)]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; run with --help to list the keys"
    if not close and isinstance(data, dict):  # load_config(SSLConfig, "small_vit_tiny"): the file's .ssl fits
        if whole := [k for k, v in data.items() if isinstance(v, dict) and v and set(v) <= fields]:
            hint = (
                f"; its {whole[0]!r} section fits {schema.__name__}: load the file with its own config class and "
                f"take .{whole[0]} (e.g. load_config(PretrainConfig, ...).{whole[0]})"
            )
    return f"unknown config key {key!r} in {where}{hint}"


def _leaves(value: Any, prefix: str) -> list[str]:
    """The dotted keys of the values a nested mapping holds under `prefix`."""
    return [x for k, v in value.items() for x in _leaves(v, f"{prefix}.{k}")] if isinstance(value, dict) else [prefix]
