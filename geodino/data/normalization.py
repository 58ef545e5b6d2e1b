"""The normalisation record of a sensor or of a training data config (what an export carries; see
`geodino.models.checkpoints.normalization` for the record's layout)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geodino.data.config import DEFAULT_SENSORS
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import GeoDinoError, plural

__all__ = ["data_normalization", "sensor_record"]


def sensor_record(sensor: Sensor | str, origin: str = "") -> dict[str, Any]:
    """The normalisation record of a sensor (built-in name, YAML path or `Sensor`)."""
    s = get_sensor(sensor)
    d = s.to_dict()
    return {k: d[k] for k in ("bands", "scale", "offset", "mean", "std")} | {"sensor": s.name, "origin": origin}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def data_normalization(data_cfg: Any) -> tuple[dict[str, Any] | None, str]:
    """(record, '') of the normalisation a pretraining data config standardises with, or (None, why not).

    `data.norm_sensor` decides when set (with each source's DN scale, which must then agree); else every
    source's own sensor, which must agree on bands, scale and mean/std (one backbone has one input
    normalisation). A source without `sensor:` (3-band uint8 rasters use SAT-493M) or a sensor YAML that is
    gone gives None with the reason.
    """
    sources = list(_get(data_cfg, "sources") or [])
    records = []
    for i, src in enumerate(sources):
        name = _get(src, "sensor") or DEFAULT_SENSORS.get(str(_get(src, "type") or "raster"))
        if not name:
            return None, f"data.sources[{i}] names no sensor"
        try:
            s = get_sensor(name)
            bands = _get(src, "bands")
            if bands:
                s = s.select(list(bands))
        except GeoDinoError as exc:
            return None, f"data.sources[{i}].sensor {name!r} cannot be read now ({exc})"
        records.append(sensor_record(s, f"pretraining data (sensor {s.name})"))
    if not records:
        return None, "the data config has no sources"
    norm = _get(data_cfg, "norm_sensor")
    if norm:
        try:
            n = get_sensor(norm)
        except GeoDinoError as exc:
            return None, f"data.norm_sensor {norm!r} cannot be read now ({exc})"
        first = records[0]
        if any(r["scale"] != first["scale"] or r["offset"] != first["offset"] for r in records[1:]):
            return None, "the sources have different DN scales"
        rec = sensor_record(n, f"pretraining data (norm_sensor {n.name})")
        if len(rec["mean"]) != len(first["bands"]):
            has = plural(len(rec["mean"]), "band")
            return None, f"norm_sensor {n.name!r} has {has}, the data {len(first['bands'])}"
        return rec | {"bands": first["bands"], "scale": first["scale"], "offset": first["offset"]}, ""
    keys = ("bands", "scale", "offset", "mean", "std")
    if any(tuple(map(str, (r[k] for k in keys))) != tuple(map(str, (records[0][k] for k in keys))) for r in records):
        return None, "the sources' sensors differ (set data.norm_sensor to standardise them alike)"
    return records[0], ""
