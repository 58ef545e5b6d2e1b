"""The classes of an `embed classify` map: label values as class names ("3", not "3.0"), their natural order
("2" before "10": the map's, legend's and scores' order) and each class's pixel value in the map (its own code when
every class is an integer 0..254, else its position)."""

from __future__ import annotations

from typing import Any

import numpy as np

from geodino.embed.classify_outputs import NODATA

__all__ = ["class_codes", "class_names", "natural_order"]


def class_names(values: np.ndarray) -> np.ndarray:
    """Label values as class names: integral numbers as integers ("3", not "3.0": a numeric column with an empty
    cell is read as floats), anything else as its text."""
    import numbers

    def name(v: Any) -> str:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return str(int(v))
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer():
            return str(int(float(v)))
        return str(v)

    return np.array([name(v) for v in values], dtype=object).astype(str)


def _natural_key(name: str) -> tuple:
    import re

    if re.fullmatch(r"-[0-9]+", name):  # a negative class code by value: -1 before 0 (it sorted after 300)
        return ((0, int(name), ""),), name
    parts = tuple(
        (0, int(t), "") if t.isascii() and t.isdigit() else (1, 0, t) for t in re.split(r"([0-9]+)", name) if t
    )
    return parts, name  # the name breaks ties ("01" and "1"), so the order never depends on set iteration


def natural_order(names: Any) -> list[str]:
    """Class names in natural order: numbers by value ("2" before "10"), text alphabetically with its numbers."""
    return sorted((str(n) for n in names), key=_natural_key)


def class_codes(classes: list[str]) -> dict[str, int]:
    """Pixel value of each class in the map: the class's own code when every class is an integer 0..254 (so
    label 10 is pixel 10), else its position in `classes` (natural order)."""
    ints = [c for c in classes if c.isascii() and c.isdigit() and str(int(c)) == c and int(c) < NODATA]
    if len(ints) == len(classes):
        return {c: int(c) for c in classes}
    return {c: i for i, c in enumerate(classes)}
