"""The default DN -> reflectance rule by data type, for integer data no other rule covers: its one home.

uint8 / 255 (8-bit imagery), uint16 and int16 / 10000 (Sentinel-2, Landsat and most L2 products store
reflectance x 10000; NetCDF3 has no uint16, so such DN come as int16), floats as given (reflectance already). No
other type has a default: int8 holds codes (quantised embeddings such as `geodino embed --dtype int8` output,
classes, SAR dB), and 32/64-bit integers (counts, sums, IDs, products of many scales) have no common scale.
Before, `geodino embed` divided them by 10000 with an "assumed" warning while the probes and `embed images`
took them as reflectance silently (scale 1): the features were far off without a word, and two commands read the
same file differently. They are refused unless a rule is given (--scale, a sensor, the file's own scale/offset,
the backbone's recorded DN scale). `geodino embed`, `embed images`, the probes and `FrozenBackbone.preprocess`
all read the rule here; `DTYPE_RULE` is its text for messages and descriptions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geodino.errors import InputError

__all__ = ["DTYPE_DEFAULTS", "DTYPE_RULE", "dtype_divisor", "has_dtype_default"]

DTYPE_DEFAULTS = "uint8 / 255, uint16 / 10000, int16 / 10000, floats as given"
DTYPE_RULE = f"{DTYPE_DEFAULTS}; other integer types refused without a scale"

_DIVISORS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 10000.0, np.dtype(np.int16): 10000.0}


def _native(dtype: Any) -> np.dtype:
    """`dtype` in the machine's byte order: big-endian uint16 ('>u2': an in-memory cube of raw big-endian DN) holds
    the same DN as uint16, but numpy's dtypes of two byte orders compare unequal."""
    dt = np.dtype(dtype)
    return dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt


def has_dtype_default(dtype: Any) -> bool:
    """Whether data of `dtype` has a default rule (uint8, uint16, int16, any float), so needs no --scale."""
    dt = _native(dtype)
    return dt.kind == "f" or dt in _DIVISORS


def dtype_divisor(dtype: Any, name: str = "input", fix: str = "pass its DN -> reflectance factor") -> float:
    """What data of `dtype` is divided by to get reflectance: 255 (uint8), 10000 (uint16, int16), 1 (floats).
    Any other type is refused in one line naming `name` (the file or tensor: "input x.tif") and its type, then
    `fix`: the caller's way to give the factor (--scale, data_scale, ...); complex data in `check_real`'s line,
    without `fix` (a factor would not help: casting drops the imaginary part). A divisor, not a factor, so each
    caller keeps its own arithmetic bit for bit (`preprocess` divides by 255, the probes multiply by 1/255)."""
    dt = _native(dtype)
    if dt.kind == "f":
        return 1.0
    if dt.kind == "c":  # no factor makes complex numbers reflectance: said as embed and data stats say it
        from geodino.data.validity import check_real

        check_real(dt, name)
    if dt in _DIVISORS:
        return _DIVISORS[dt]
    if dt == np.int8:
        why = (
            "signed 8-bit data holds codes (quantised embeddings, classes, SAR dB), not reflectance DN, so no "
            "default fits (DN / 10000 gives values within +-0.0128)"
        )
    elif dt.kind in "iu":
        why = f"{dt.itemsize * 8}-bit integers (counts, sums, IDs, products of many scales) have no common DN scale"
    else:
        why = "it is not numeric imagery"
    raise InputError(f"{name} is {dt.name}: {why} (the defaults: {DTYPE_DEFAULTS}); {fix}")
