"""Band selections as callers give them: one parser for the three kinds of value a `bands` option takes.

- band names (`parse_band_names`): a data source's `bands` / `band_names` (data and pretraining configs,
  `compute_stats`), matched against the files' band names;
- names or a count (`parse_backbone_bands`): a backbone's bands (`load_backbone(bands=...)`, a spec's
  `?bands=red,green,blue` or `?bands=4`);
- 1-based band numbers (`parse_band_numbers`): the input bands `geodino embed` reads (`bands=[4,3,2]`,
  `--bands 4,3,2`).

Each accepts a list, a tuple, a 1-D array (numpy, torch: anything with `tolist` and `ndim == 1`), comma text
("red,nir", "4,3,2") and YAML flow text ("[4, 3, 2]"); numpy integers count as integers. A value of another kind
is refused in one ConfigError line of one form, `KEY=VALUE cannot be used: <what KEY takes>; <where that kind of
value goes>`, so band numbers given where names are matched (which matched none, and for a backbone replaced
every trained kernel by the mean kernel) never pass silently. Torch-free and rasterio-free: config schemas use it.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

from geodino.errors import ConfigError

__all__ = [
    "BAND_NUMBERS_HINT",
    "parse_backbone_bands",
    "parse_band_names",
    "parse_band_numbers",
    "repeated_band",
    "space_rule",
]

BAND_NUMBERS_HINT = (
    "embed's bands are 1-based band numbers of the input (e.g. bands=[4,3,2], --bands 4,3,2); band names go to the "
    "backbone (its spec's ?bands=red,green,blue) or a sensor (sensor=NAME, --sensor NAME)"
)
"""What embed's `bands` takes and where band names go instead: the default rule of `parse_band_numbers`."""

BACKBONE_BANDS_RULE = (
    "a backbone's bands are band names (bands=['red', 'green', 'blue'], ?bands=red,green,blue in a spec) or a band "
    "count (bands=3, ?bands=3)"
)
NUMBERS_GO_TO_EMBED = "1-based band numbers select the input's bands in embed (bands=[4,3,2], --bands 4,3,2)"
COUNT_GOES_TO_BACKBONE = "a band count goes to the backbone (its spec's ?bands=N), and bands=[N] reads band N alone"

_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


def _refuse(key: str, value: Any, rule: str, *more: str) -> ConfigError:
    """The one form of every refusal here: `KEY=VALUE cannot be used: RULE; MORE...`."""
    return ConfigError("; ".join([f"{key}={value!r} cannot be used: {rule}", *[m for m in more if m]]))


def _is_int(item: Any) -> bool:
    """A Python or numpy integer (bools are flags, not band numbers)."""
    return isinstance(item, numbers.Integral) and not isinstance(item, bool)


def _is_number(item: Any) -> bool:
    return isinstance(item, numbers.Real) and not isinstance(item, bool)


def _is_number_text(item: Any) -> bool:
    """Text that is numbers, not a name: "4", "+4", "-1", "3.0", "4 3 2"."""
    words = str(item).replace(",", " ").split() if isinstance(item, str) else []
    return bool(words) and all(_NUMBER_TEXT.fullmatch(w) for w in words)


def _yaml_list(text: str) -> list[Any] | None:
    """A YAML flow list written as text ("[4, 3, 2]", "[red, nir]"), as a config file or override gives it; None
    for other text (read as comma-separated)."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, list) else None


def _sequence(value: Any) -> list[Any] | None:
    """The items of a list, a tuple or a 1-D array (numpy or torch, read with `tolist`); None for anything else."""
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", None) == 1:
        return list(value.tolist())
    return None


def _name_items(value: Any, key: str, rule: str, *, spaced_numbers: bool = False) -> list[Any]:
    """The items of a band-names value: a YAML flow list or comma text ("red,nir"; blank items dropped), or a list,
    tuple or 1-D array; anything else is refused with `rule`. Text of words apart by spaces ("red nir", read whole
    one band no file or checkpoint has) is refused with `space_rule`, except numbers text ("4 3 2") with
    `spaced_numbers`, which the caller refuses by its own rule."""
    if not isinstance(value, str):
        given = _sequence(value)
        if given is None:
            raise _refuse(key, value, rule)
        return given
    text = value.strip()
    listed = _yaml_list(text)
    if listed is not None:
        return listed
    if "," not in text and len(text.split()) > 1 and not (spaced_numbers and _is_number_text(text)):
        raise _refuse(key, value, *space_rule(key, value))
    return [b.strip() for b in text.split(",") if b.strip()]


def parse_band_names(value: Any, key: str) -> list[str] | None:
    """A data source's `bands` (or `band_names`) as a list of names: None and [] stay None, comma text ("red,nir")
    is split. The names are labels matched against the files' (a file's bands may be called "1", "2"), so numeric
    text stays a name; numbers (1, 2) are refused, naming the b1, b2 ... a raster without band names has."""
    if value is None:
        return None
    field = key.rsplit(".", 1)[-1]
    rule = f"{field} are band names here (e.g. ['red', 'nir'], or the text 'red,nir')"
    items = _name_items(value, key, rule)
    if any(_is_number(b) for b in items):
        names = [f"b{b}" if _is_int(b) and b >= 1 else str(b) for b in items]
        raise _refuse(
            key,
            value,
            f"{field} are band names here (e.g. ['red', 'nir']), not numbers (1-based band numbers are embed's bands, "
            f"--bands)",
            f"a raster whose bands carry no names calls them b1, b2 ..., so write {key}={names!r}",
        )
    bad = [b for b in items if not isinstance(b, str)]
    if bad:
        raise _refuse(key, value, rule, f"{bad[0]!r} is not a band name")
    return [str(b) for b in items] or None


def space_rule(key: str, value: str) -> tuple[str, str]:
    """What a name list written with spaces ("red nir") should be: names apart by commas. Read whole it was one
    band named "red nir" that no file has (a file's band may have a space in its name, so it is not split)."""
    words = value.split()
    return (
        f"band names are apart by commas ({key}={','.join(words)} or {key}={words!r}), not spaces",
        f"a single name with a space in it goes in a list ({key}=[{value.strip()!r}])",
    )


def parse_backbone_bands(value: Any, key: str = "bands") -> tuple[int | None, list[str] | None]:
    """(count, names) of a backbone's bands given as a count (3, "3", numpy int) or names (a list, "B02,B03",
    "[red, nir]"): (None, None) for None. Band numbers (a list of integers, "4,3,2") are refused: read as names
    they matched none, and a checkpoint's every patch-embedding kernel became the mean kernel with only a warning.
    Other objects in a list (e.g. band enums) are named by their text, as before."""
    if value is None:
        return None, None
    count = int(value) if _is_int(value) else None
    if isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    if count is not None:
        if count < 1:
            raise _refuse(key, value, BACKBONE_BANDS_RULE, "a band count is at least 1")
        return count, None
    # "4 3 2" passes as numbers text: refused below by the rule for band numbers, not the space rule
    items = _name_items(value, key, BACKBONE_BANDS_RULE, spaced_numbers=True)
    if not items:
        raise _refuse(key, value, BACKBONE_BANDS_RULE, f"leave {key} out to keep the backbone's own")
    if any(_is_number(b) or _is_number_text(b) for b in items):
        raise _refuse(key, value, BACKBONE_BANDS_RULE, NUMBERS_GO_TO_EMBED)
    bad = [b for b in items if b is None or isinstance(b, bool | list | tuple | dict | set)]
    if bad:
        raise _refuse(key, value, BACKBONE_BANDS_RULE, f"{bad[0]!r} is not a band name")
    names = [str(b) for b in items]
    twice = repeated_band(names)
    if twice:  # two inputs matched to one kernel (and one set of statistics): the backbone sees a band twice
        raise _refuse(key, value, "list each band once", f"{twice!r} is listed twice")
    return len(names), names


def repeated_band(names: Any) -> str | None:
    """The first band name listed twice in `names` (case and spaces ignored, as checkpoints match names), else None."""
    seen: set[str] = set()
    for name in names:
        key = str(name).strip().lower()
        if key in seen:
            return str(name)
        seen.add(key)
    return None


def parse_band_numbers(value: Any, key: str = "bands", hint: str = BAND_NUMBERS_HINT) -> list[int] | None:
    """The input bands to read as a list of 1-based ints: None or [] stays None; integers (numpy too) and their
    text ("4", "4,3,2" or "4 3 2" as --bands takes it, "[4, 3, 2]") pass. Band names, a bare number (a count? band
    3?) or anything else is one ConfigError line: `hint` says what `key` takes and where names go."""
    if value is None:
        return None
    if isinstance(value, str):
        listed = _yaml_list(value.strip())
        items = listed if listed is not None else value.replace(",", " ").split() or None  # blank text: refused
    else:
        items = _sequence(value)
    if items is None:
        count = _is_int(value) and value >= 1
        raise _refuse(key, value, hint, COUNT_GOES_TO_BACKBONE.replace("N", str(value)) if count else "")
    out = []
    for b in items:
        if _is_int(b):
            out.append(int(b))
        elif isinstance(b, str) and b.strip().lstrip("+").isdigit():
            out.append(int(b))
        else:
            raise _refuse(key, value, hint)
    return out or None
