"""The DN -> physical rule a datacube store declares by CF `scale_factor`/`add_offset` (`declared_rule`), and the
refusal of a store whose rule differs from the sensor's (`check_declared_rule`: pixels are read raw and scaled by
the sensor). `geodino.data.cube_grid` re-exports these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.sensors import Sensor
from geodino.errors import InputError

__all__ = ["check_declared_rule", "declared_rule"]


def _scalar(value: Any, default: float) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    return float(arr[0]) if arr.size and math.isfinite(float(arr[0])) else default


def declared_rule(variables: Sequence[Any]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(scales, offsets), one per band, that variables declare by CF `scale_factor`/`add_offset` (physical value =
    DN * scale_factor + add_offset), or None when every one declares 1/0 or nothing. `variables` gives one xarray
    variable per band (a variable of several bands is repeated: CF's attributes cover the whole variable). Attributes
    only: stores are opened undecoded, and an in-memory array xarray decoded keeps its rule in `encoding` (applied)."""
    scales = tuple(_scalar(v.attrs.get("scale_factor", 1.0), 1.0) for v in variables)
    offsets = tuple(_scalar(v.attrs.get("add_offset", 0.0), 0.0) for v in variables)
    if all(s == 1.0 for s in scales) and all(o == 0.0 for o in offsets):
        return None
    return scales, offsets


def check_declared_rule(scenes: Sequence[Any], sensor: Sensor) -> None:
    """Refuse stores declaring a DN -> physical rule other than the sensor's, as raster archives refuse GDAL
    scale/offset tags: pixels are read raw and scaled by the sensor, so a store of DN * 0.0001 - 0.1 (Sentinel-2
    L2A, baseline >= 04.00) read with a sensor of DN * 0.0001 would be 0.1 too bright in every band, silently."""
    from geodino.data.rasters import format_rule

    n = sensor.n_bands

    def per_band(value: Any) -> tuple[float, ...]:
        return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),) * n

    want_s, want_o = per_band(sensor.scale), per_band(sensor.offset)
    for sc in scenes:
        if not sc.scales:
            continue
        same = all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(sc.scales, want_s, strict=True)) and all(
            math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(sc.offsets, want_o, strict=True)
        )
        if same:
            continue
        yaml_s = f"{sc.scales[0]:g}" if len(set(sc.scales)) == 1 else "[" + ", ".join(f"{v:g}" for v in sc.scales) + "]"
        yaml_o = (
            f"{sc.offsets[0]:g}" if len(set(sc.offsets)) == 1 else "[" + ", ".join(f"{v:g}" for v in sc.offsets) + "]"
        )
        uniform = len(set(sc.scales)) == 1 and len(set(sc.offsets)) == 1
        flags = f" (in data stats: --scale {yaml_s} --offset {yaml_o})" if uniform else ""
        raise InputError(
            f"datacube {sc.path} declares physical value = {format_rule(sc.scales, sc.offsets)} (CF scale_factor/"
            f"add_offset of bands {', '.join(sc.band_names)}; pixels are read raw) but sensor {sensor.name!r} reads "
            f"{format_rule(want_s, want_o)}; if the store's rule is right, read it with a sensor YAML (`sensor:`) "
            f"of scale: {yaml_s} and offset: {yaml_o}{flags}; if its attributes are wrong, drop scale_factor/"
            "add_offset from the variable's attributes"
        )
