"""OmegaConf's refusal of a config value of the wrong type, in words: what the key takes and an example.

OmegaConf says "Cannot convert 'ListConfig' to string: '['a', 'b']'" for a list given to a text key and "Value
'three' of type 'str' could not be converted to Integer" for a word given to a number: its class names, not the
YAML a user wrote."""

from __future__ import annotations

import re
from typing import Any

_TEXT = re.compile(r"^Cannot convert '(ListConfig|DictConfig)' to string: '(.*)'$")
_NUMBER = re.compile(r"^Value '(.*)' of type '\w+' could not be converted to (Integer|Float)$")
_BOOL = re.compile(r"^Value '(.*)' is not a valid bool \(type \w+\)$")
_HINT = re.compile(r"^Value '(.*)' of type '\w+' is incompatible with type hint '(.*)'$")
_KINDS = {"ListConfig": "a list", "DictConfig": "a mapping"}


def value_words(msg: str, key: str, hint: Any = None) -> str:
    """`msg` (OmegaConf's first line) said as what `key` takes, with an example; other messages unchanged. The
    text keeps "Value '...'" where OmegaConf had it, so the value is named first. `hint`: the key's declared type
    (`field_type` of OmegaConf's error), which tells a Union of numbers from others."""
    leaf = key.rsplit(".", 1)[-1]
    if m := _TEXT.match(msg):
        return f"{_KINDS[m.group(1)]} ({m.group(2)}) where one text value goes; give one, e.g. {leaf}: NAME"
    if m := _NUMBER.match(msg):
        whole = m.group(2) == "Integer"
        kind, example = ("a whole number", "3") if whole else ("a number", "0.5")
        return f"Value '{m.group(1)}' is not {kind}; give one, e.g. {leaf}: {example}"
    if m := _HINT.match(msg):  # a Union key, e.g. tile_size: int | float
        kind, example = _union_words(hint, m.group(2))
        return f"Value '{m.group(1)}' is not {kind}" + (f"; give one, e.g. {leaf}: {example}" if example else "")
    if m := _BOOL.match(msg):
        return f"Value '{m.group(1)}' is not true or false; give one, e.g. {leaf}: true"
    return msg


def field_type(exc: BaseException) -> Any:
    """The declared type of the config node an OmegaConf error is about (`Union[int, float]`), or None."""
    metadata = getattr(getattr(exc, "child_node", None), "_metadata", None)
    return getattr(metadata, "ref_type", None)


def _union_words(hint: Any, text: str) -> tuple[str, str]:
    """(what a Union key takes, an example) from its member types: "a number" (256) only where every member is
    int or float; else each member in words, without an example. The type's name is not searched for "int"
    (a `Point` enum, a `Union[Point, bool]` key was called a number). `text`, OmegaConf's hint, where the type
    is unknown."""
    import enum
    import typing

    members = [a for a in typing.get_args(hint) if a is not type(None)]
    if not members:
        return f"a {text}", ""
    if all(a is int or a is float for a in members):
        return ("a whole number", "3") if all(a is int for a in members) else ("a number", "256")
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    said = [
        words[a]
        if a in words
        else f"one of {', '.join(a.__members__)}"
        if isinstance(a, type) and issubclass(a, enum.Enum)
        else f"a {getattr(a, '__name__', a)}"
        for a in members
    ]
    return " or ".join(dict.fromkeys(said)), ""
