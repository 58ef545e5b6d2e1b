"""OmegaConf's refusal of a config value of the wrong type, in words: what the key takes and an example.

OmegaConf says "Cannot convert 'ListConfig' to string: '['a', 'b']'" for a list given to a text key and "Value
'three' of type 'str' could not be converted to Integer" for a word given to a number: its class names, not the
YAML a user wrote."""

from __future__ import annotations

import re

_TEXT = re.compile(r"^Cannot convert '(ListConfig|DictConfig)' to string: '(.*)'$")
_NUMBER = re.compile(r"^Value '(.*)' of type '\w+' could not be converted to (Integer|Float)$")
_BOOL = re.compile(r"^Value '(.*)' is not a valid bool \(type \w+\)$")
_HINT = re.compile(r"^Value '(.*)' of type '\w+' is incompatible with type hint '(.*)'$")
_KINDS = {"ListConfig": "a list", "DictConfig": "a mapping"}


def value_words(msg: str, key: str) -> str:
    """`msg` (OmegaConf's first line) said as what `key` takes, with an example; other messages unchanged. The
    text keeps "Value '...'" where OmegaConf had it, so the value is named first."""
    leaf = key.rsplit(".", 1)[-1]
    if m := _TEXT.match(msg):
        return f"{_KINDS[m.group(1)]} ({m.group(2)}) where one text value goes; give one, e.g. {leaf}: NAME"
    if m := _NUMBER.match(msg):
        whole = m.group(2) == "Integer"
        kind, example = ("a whole number", "3") if whole else ("a number", "0.5")
        return f"Value '{m.group(1)}' is not {kind}; give one, e.g. {leaf}: {example}"
    if m := _HINT.match(msg):  # a Union key, e.g. tile_size: int | float
        hint = m.group(2)
        kind, example = ("a number", "256") if "int" in hint or "float" in hint else (f"a {hint}", "")
        return f"Value '{m.group(1)}' is not {kind}" + (f"; give one, e.g. {leaf}: {example}" if example else "")
    if m := _BOOL.match(msg):
        return f"Value '{m.group(1)}' is not true or false; give one, e.g. {leaf}: true"
    return msg
