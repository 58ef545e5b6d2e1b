"""How a datacube's dates are written for people (messages, listings, sample `time`, embed's `input_time`): ISO
8601 dates as short as they are exact (2024-02-01, 2024-02-01T10:32, 2024-02-01T10:32:11.500), the same text for
numpy datetimes and for the cftime dates xarray decodes a non-standard CF calendar (noleap, 360_day) to.

Written by `str`, a numpy date read 2024-02-01T00:00:00.000000000, a cftime date "2000-01-01 00:00:00" (a space:
not one shell argument, so embed's hint `time=2000-01-01 00:00:00` could not be pasted) and, inside a list or
an array, cftime.DatetimeNoLeap(2000, 1, 1, 0, 0, 0, 0, has_year_zero=True).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["date_label", "date_labels", "holds_cftime"]

_PARTS = ("year", "month", "day")


def date_label(value: Any) -> str:
    """One date as ISO text as short as it is exact; a value that is no date (a number, a label) as `str` gives it.

    Dates with year/month/day attributes (cftime, datetime, pandas) are written field by field rather than by their
    own isoformat: a 360_day calendar's 2000-02-30 is no Python date, and cftime's isoformat always adds the time."""
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="auto"))  # NaT stays NaT
    if isinstance(value, (str, bytes)) or not all(hasattr(value, k) for k in _PARTS):
        return value.decode() if isinstance(value, bytes) else str(value)
    try:
        y, mo, d = (int(getattr(value, k)) for k in _PARTS)
        h, mi, s, us = (int(getattr(value, k, 0) or 0) for k in ("hour", "minute", "second", "microsecond"))
    except (TypeError, ValueError):  # attributes of those names that are not numbers: not a date
        return str(value)
    text = f"{y:04d}-{mo:02d}-{d:02d}"
    if (h, mi, s, us) == (0, 0, 0, 0):
        return text
    text += f"T{h:02d}:{mi:02d}"
    if s or us:
        text += f":{s:02d}"
    if us:  # milliseconds when exact, as numpy's unit="auto" writes them
        text += f".{us // 1000:03d}" if us % 1000 == 0 else f".{us:06d}"
    return text


def date_labels(values: Iterable[Any]) -> list[str]:
    """`date_label` of each value (a time coordinate's values, in order)."""
    return [date_label(v) for v in values]


def holds_cftime(values: Any) -> bool:
    """Whether an array holds dates of a CF calendar as cftime objects (what xarray decodes a noleap, 360_day or
    julian axis to: an object array, not datetime64), each with its `calendar`."""
    arr = np.asarray(values)
    return arr.dtype.kind == "O" and arr.size > 0 and all(hasattr(v, "calendar") for v in arr.flat)
