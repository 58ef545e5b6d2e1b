"""The DN -> reflectance rule a raster declares (GDAL scale/offset) as the sensor `viz attention` reads it by, as
`geodino embed` reads it (`geodino.embed.prepare.file_rule`): ahead of --sensor and the backbone's record, and with
neither (a record-less `arch:` backbone: its default mean/std), where viz asked for --sensor while embed read the
file by its own rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["declared_sensor", "file_sensor"]


def declared_sensor(
    source: str,
    sensor: Any,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    backbone: Any = None,
) -> tuple[Any, str] | None:
    """`sensor` (a name or Sensor) with the rule (GDAL scale/offset) the raster `source` declares for the bands read,
    when each declares the same one other than the sensor's, and the line saying so; else None (the archive decides).
    The bands read: `bands` (else the sensor's) found among its descriptions (or `band_names`), else all, so a band
    declaring nothing never takes another's rule (Landsat SR bands beside ST_B10's x*0.00341802+149). As `geodino
    embed` reads it (`input_scaler`), ahead of --sensor and the record: the archive refused a `data stack` VRT of a
    SAFE of baseline >= 04.00 (x*0.0001-0.1) read by a Sentinel-2 sensor (x*0.0001). Without `sensor` (no --sensor,
    no record), `file_sensor`: the file's rule and the backbone's mean/std."""
    if sensor is None:
        return file_sensor(source, bands, band_names, backbone)
    from geodino.data.headers import header_or_none

    head = header_or_none(source, reader="rasterio")
    if head is None or not head.scales:
        return None
    names = [
        str(n).lower() for n in (band_names if band_names and len(band_names) == head.count else head.descriptions)
    ]
    from geodino.data.sensors import get_sensor

    s = get_sensor(sensor)
    wanted = [str(b).lower() for b in bands or s.bands]  # without --bands the archive reads the sensor's bands
    read = [names.index(b) for b in wanted] if all(b in names for b in wanted) else range(head.count)
    rules = {(float(head.scales[i]), float(head.offsets[i])) for i in read}
    if len(rules) != 1 or rules == {(1.0, 0.0)}:
        return None
    import dataclasses

    from geodino.data.rasters import format_rule

    scale, offset = rules.pop()
    if np.allclose(s.scale, scale, rtol=1e-6, atol=0) and np.allclose(s.offset, offset, rtol=1e-6, atol=1e-9):
        return None
    rule = format_rule([scale], [offset])
    return dataclasses.replace(s, scale=scale, offset=offset), (
        f"geodino: {source} is read by its own GDAL scale/offset, physical value = {rule}, as geodino embed reads "
        f"it (bands of sensor {s.name}, whose rule is {format_rule(_values(s.scale), _values(s.offset))})"
    )


def _values(v: Any) -> list[float]:
    """A sensor's scale or offset as a list (one value, or one per band)."""
    return [float(x) for x in np.atleast_1d(v)]


def file_sensor(
    source: str, bands: Sequence[str] | None, band_names: Sequence[str] | None, backbone: Any
) -> tuple[Any, str] | None:
    """The sensor of a raster read with neither --sensor nor a backbone record of a DN scale, when every band read
    declares a rule (GDAL scale/offset, per band or one) and they are the backbone's band count: the bands read
    (`bands` by the file's descriptions or `band_names`, else all), the file's rule, the backbone's mean/std (the
    normalisation viz applies anyway). None otherwise (no mean/std, a band declaring nothing, `bands` not all
    found, another band count): --sensor is asked for, as before. The line saying so names the rule."""
    mean_v, std_v = (_flat(getattr(backbone, k, None)) for k in ("mean", "std"))
    if mean_v is None or std_v is None:
        return None
    from geodino.data.headers import header_or_none

    head = header_or_none(source, reader="rasterio")
    if head is None or not head.scales:
        return None
    given = [str(n) for n in band_names] if band_names and len(band_names) == head.count else []
    names = given or [str(d or "") for d in head.descriptions]
    if len({n.lower() for n in names if n}) != head.count:  # unnamed (or twice-named) bands: by position
        names = [f"b{i}" for i in range(1, head.count + 1)]
    lower = [n.lower() for n in names]
    if bands and not all(str(b).lower() in lower for b in bands):
        return None
    read = [lower.index(str(b).lower()) for b in bands] if bands else list(range(head.count))
    scales = [float(head.scales[i]) for i in read]
    offsets = [float(head.offsets[i]) for i in read]
    if len(read) != mean_v.size or any(s == 1.0 and o == 0.0 for s, o in zip(scales, offsets, strict=True)):
        return None
    from geodino.data.rasters import format_rule
    from geodino.data.sensors import Sensor

    one = len(set(scales)) == 1 and len(set(offsets)) == 1
    sensor = Sensor(
        name=f"declared by {Path(source).name}",
        bands=tuple(names[i] for i in read),
        scale=scales[0] if one else tuple(scales),
        offset=offsets[0] if one else tuple(offsets),
        mean=tuple(float(v) for v in mean_v),
        std=tuple(float(v) for v in std_v),
        rgb_like=False,
    )
    return sensor, (
        f"geodino: no --sensor given: {source} is read by its own GDAL scale/offset, physical value = "
        f"{format_rule(scales, offsets)}, as geodino embed reads it (bands {', '.join(sensor.bands)}, standardised "
        "by the backbone's mean/std)"
    )


def _flat(v: Any) -> np.ndarray | None:
    """A backbone's mean or std (a tensor of any shape) as a flat float array; None when it has none."""
    if v is None or not hasattr(v, "flatten"):
        return None
    return np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64).flatten()
