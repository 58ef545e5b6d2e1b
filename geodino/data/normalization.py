"""The normalisation record of a sensor or of a training data config (what an export carries; see
`geodino.models.checkpoints.normalization` for the record's layout)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from geodino.data.config import DEFAULT_SENSORS
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import ConfigError, GeoDinoError, plural

__all__ = ["data_normalization", "norm_for_data", "sensor_record"]


def sensor_record(sensor: Sensor | str, origin: str = "") -> dict[str, Any]:
    """The normalisation record of a sensor (built-in name, YAML path or `Sensor`)."""
    s = get_sensor(sensor)
    d = s.to_dict()
    return {k: d[k] for k in ("bands", "scale", "offset", "mean", "std")} | {"sensor": s.name, "origin": origin}


def _by_common_name(norm: Sensor, data: Sensor) -> list[str] | None:
    """The norm sensor's band for each data band through their shared common names (aliases such as `blue`,
    `nir`, `swir16`; numbered aliases like `B4` are left out: Landsat TM's SR_B4 is NIR, OLI's red), or None
    unless every data band has exactly one, all distinct."""
    out: list[str] = []
    for band in data.bands:
        names = [a for a, b in data.aliases.items() if b == band and not re.fullmatch(r"[bB]\d+", a)]
        hits = {norm.resolve_band(a, strict=False) for a in names} - {None}
        if len(hits) != 1:
            return None
        out.append(hits.pop())  # type: ignore[arg-type]
    return out if len(set(out)) == len(out) else None


def norm_for_data(norm: Sensor | None, data: Sensor) -> Sensor:
    """`norm` (the sensor whose mean/std standardise) with its statistics in the data's band order.

    Matched by name: through common names (blue, red, nir... : Landsat 7 data under Landsat 8 statistics, or
    Sentinel-2 B04, B03, B02 under SAT-493M's R, G, B), else by the bands' own names (data reading SR_B5, SR_B2,
    ... gets SR_B5's statistics on channel 0). A norm sensor naming none of the data's bands is taken in order, as
    an RGB backbone's statistics (`sat493m`, `imagenet`) are on the data's 3 bands; one naming only some of them is
    refused, as is a band count that differs."""
    if norm is None or norm is data:
        return data
    common = _by_common_name(norm, data)
    if common is not None:
        return norm.select(common)
    own = [norm.resolve_band(b, strict=False) for b in data.bands]
    if None not in own and len(set(own)) == len(own):
        return norm.select(own)  # type: ignore[arg-type]
    shared = [b for b, o in zip(data.bands, own, strict=True) if o is not None]
    if shared and norm.n_bands == data.n_bands:  # read in order, the shared names would get others' statistics
        missing = [b for b, o in zip(data.bands, own, strict=True) if o is None]
        raise ConfigError(
            f"normalisation sensor {norm.name!r} ({', '.join(norm.bands)}) names data bands {', '.join(shared)} but "
            f"not {', '.join(missing)}, so its statistics cannot be matched to the data's bands by name; pick a norm "
            "sensor with the data's bands (a `geodino data stats` YAML of them)"
        )
    if norm.n_bands != data.n_bands:
        raise ConfigError(
            f"normalisation sensor {norm.name!r} has {plural(norm.n_bands, 'band')} but the data has "
            f"{data.n_bands} ({', '.join(data.bands)}); pick a norm sensor with the same bands"
        )
    return norm


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def data_normalization(
    data_cfg: Any, purpose: str = "pretraining", sensors: Sequence[Sensor | None] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """(record, '') of the normalisation a pretraining data config standardises with, or (None, why not).
    `purpose` names the data in the record's origin ("distillation" for a student's). `sensors`: the sensor the
    loader resolved for each source (`source.sensor`), taken for a source whose config names none: 3-band uint8
    rasters without `sensor:` are read as SAT-493M, which only the files tell.

    `data.norm_sensor` decides when set (with each source's DN scale, which must then agree); else every
    source's own sensor, which must agree on bands, scale and mean/std (one backbone has one input
    normalisation). A source without `sensor:` (and no resolved one given) or a sensor YAML that is gone gives
    None with the reason.
    """
    sources = list(_get(data_cfg, "sources") or [])
    records = []
    data_sensors: list[Sensor] = []
    for i, src in enumerate(sources):
        name = _get(src, "sensor") or DEFAULT_SENSORS.get(str(_get(src, "type") or "raster"))
        resolved = sensors[i] if sensors is not None and i < len(sensors) else None
        if not name and resolved is None:
            return None, f"data.sources[{i}] names no sensor"
        try:
            if name:
                s = get_sensor(name)
                bands = _get(src, "bands")
                if bands:
                    s = s.select(list(bands))
            else:  # what the loader read the files as (its bands already those selected)
                assert resolved is not None  # no name: returned above unless resolved
                s = get_sensor(resolved)
        except GeoDinoError as exc:
            return None, f"data.sources[{i}].sensor {name!r} cannot be read now ({exc})"
        data_sensors.append(s)
        records.append(sensor_record(s, f"{purpose} data (sensor {s.name})"))
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
        try:  # its statistics in the data's band order, as the loader standardises (`norm_for_data`)
            n = norm_for_data(n, data_sensors[0])
        except ConfigError as exc:
            if n.n_bands != len(first["bands"]):
                return None, f"norm_sensor {n.name!r} has {plural(n.n_bands, 'band')}, the data {len(first['bands'])}"
            return None, str(exc)
        rec = sensor_record(n, f"{purpose} data (norm_sensor {n.name})")
        return rec | {"bands": first["bands"], "scale": first["scale"], "offset": first["offset"]}, ""
    keys = ("bands", "scale", "offset", "mean", "std")
    if any(tuple(map(str, (r[k] for k in keys))) != tuple(map(str, (records[0][k] for k in keys))) for r in records):
        return None, "the sources' sensors differ (set data.norm_sensor to standardise them alike)"
    return records[0], ""
