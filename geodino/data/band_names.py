"""Band names across sensors: which built-in sensors know a set of band names, what a name means in a sensor, and
the R/G/B renaming that matches RGB checkpoints.

Kept apart from `geodino.data.sensors` (one sensor: its bands, scale and statistics, and the built-in table), which
re-exports every name here. The built-in table is read from `geodino.data.sensors` when a function runs (that module
imports this one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from geodino.errors import ConfigError

if TYPE_CHECKING:
    from geodino.data.sensors import Sensor

__all__ = [
    "ambiguous_bands_error",
    "band_meaning",
    "known_band_names",
    "known_rgb_bands",
    "rgb_bands_among",
    "rgb_names",
    "sensors_knowing",
]


_POSITION = re.compile(r"b[1-9][0-9]*")  # b1, b2 ...: a band by its position in a file that names none


def known_band_names(bands: Sequence[str]) -> list[str]:
    """The names in `bands` that some built-in sensor has as a band or alias (the others: typos, extra bands)."""
    from geodino.data.sensors import SENSORS

    return [b for b in bands if any(s.resolve_band(b, strict=False) is not None for s in SENSORS.values())]


def sensors_knowing(bands: Sequence[str]) -> list[str]:
    """The built-in sensors that have, as a band or an alias, every name of `bands` that some built-in sensor knows
    (names none knows, a typo or an extra band such as DEM, do not count); none when no name is known."""
    from geodino.data.sensors import SENSORS

    known = known_band_names(bands)
    return [n for n, s in SENSORS.items() if known and all(s.resolve_band(b, strict=False) is not None for b in known)]


def known_rgb_bands(bands: Sequence[str]) -> tuple[str, ...] | None:
    """The names among `bands` that are the red, green and blue bands (in that order) of the built-in sensors that
    know them (`sensors_knowing`: a Sentinel-2 file's B02..B12 -> (B04, B03, B02)), so a sensor YAML written for such
    a file names its RGB bands; None when no such sensor has RGB bands, when one of them lacks one of its RGB bands
    among `bands`, or when they disagree (B2, B3, B4 are blue/green/red in landsat8, green/red/nir in landsat7): a
    guess would draw other bands as red, green and blue. None for b1, b2 ... (positions: a file that names no
    band, or some of its bands): Sentinel-2 reads b4 as B04, but an unnamed stack is no more Sentinel-2 than any
    other."""
    from geodino.data.sensors import SENSORS

    bands = [str(b) for b in bands]
    if all(_POSITION.fullmatch(b) for b in bands):
        return None
    found = set()
    for name in sensors_knowing(bands):
        s = SENSORS[name]
        if not s.rgb_bands:
            continue
        canon = {s.resolve_band(b, strict=False): b for b in reversed(bands)}  # the first file band of each
        if not all(r in canon for r in s.rgb_bands):
            return None
        found.add(tuple(canon[r] for r in s.rgb_bands))
    return found.pop() if len(found) == 1 else None


def rgb_bands_among(sensor: Sensor, bands: Sequence[str]) -> tuple[str, ...] | None:
    """`sensor`'s `rgb_bands` as `bands` name them: each itself, else the band the sensor reads as it (an RGB
    GeoTIFF's red for naip's R: `data stats --sensor naip` of a 3-band file named by its colours); None when one
    is missing. Positions (b1, b2 ...) are not read through the sensor: they say nothing of what a band is."""
    if not sensor.rgb_bands:
        return None
    out = []
    for r in sensor.rgb_bands:
        hit = [b for b in bands if b == r] or [
            b for b in bands if not _POSITION.fullmatch(b) and sensor.resolve_band(b, strict=False) == r
        ]
        if not hit:
            return None
        out.append(hit[0])
    return tuple(out)


def band_meaning(sensor: Sensor, name: str) -> str:
    """What `name` is in `sensor` in plain words: the first lower-case alias of its band (blue, nir, ...), else the
    band's name; says which band a sensor-specific name (SR_B2, B5) stands for."""
    band = sensor.resolve_band(name, strict=False)
    if band is None:
        return "unknown"
    return next((a for a, b in sensor.aliases.items() if b == band and a.islower()), band)


def ambiguous_bands_error(bands: Sequence[str], sensors: Sequence[str]) -> ConfigError:
    """The one-line refusal for band names that the built-in `sensors` read as different bands (SR_B2 is blue for
    landsat8, green for landsat7): what each such name is in which sensors, and how to name the sensor. Guessing
    one numbering would give a band another band's kernel or statistics without a word."""
    from geodino.data.sensors import SENSORS

    differ: dict[str, dict[str, list[str]]] = {}
    for b in dict.fromkeys(str(b) for b in bands):
        seen: dict[str, list[str]] = {}
        for n in sensors:
            seen.setdefault(band_meaning(SENSORS[n], b), []).append(n)
        if len(seen) > 1:
            differ[b] = seen
    if not differ:  # no name differs alone (never seen: each meaning is one band of a sensor): name them all
        differ = {str(b): {band_meaning(SENSORS[sensors[0]], str(b)): list(sensors)} for b in bands}
    parts = "; ".join(
        f"{b}: " + ", ".join(f"{m} in {'/'.join(ns)}" for m, ns in seen.items()) for b, seen in differ.items()
    )
    first = next(iter(differ.values()))
    picks = [ns[0] for ns in first.values()]
    what = f"band names {', '.join(differ)} mean" if len(differ) > 1 else f"band name {next(iter(differ))} means"
    return ConfigError(
        f"{what} different bands in different sensors ({parts}); name the sensor the "
        f"data comes from ({' or '.join(f'sensor={p}' for p in picks)} in Python, ?sensor={picks[-1]} in a backbone "
        f"spec, --sensor {picks[-1]} on the command line) or use plain names (red, green, blue, nir, swir16, swir22)"
    )


def rgb_names(bands: Sequence[str], sensor: str | Path | Sensor | None = None, *, check: bool = True) -> list[str]:
    """`bands` with the sensor's red, green and blue bands renamed R, G, B (how RGB checkpoints name theirs).

    With `sensor=None` the names resolve through every built-in sensor in which all of them are bands or
    aliases that any built-in sensor knows (`sensors_knowing`: Sentinel-2 B02/B03/B04 are blue/green/red);
    when those sensors disagree on what a name is (SR_B2 is blue for landsat8, green for landsat7), a ConfigError
    asks for the sensor (`ambiguous_bands_error`). Names no sensor knows are
    kept as they are and do not stop the others resolving (R/G/B, red/green/blue still match an RGB checkpoint
    by name). `check=False` keeps names that are not bands of the given sensor
    instead of refusing them (a checkpoint's own band names need not be the data sensor's).
    """
    from geodino.data.sensors import SENSORS, get_sensor

    bands = [str(b) for b in bands]

    def rename(s: Sensor) -> list[str]:
        rgb = list(s.rgb_bands or [])
        out = []
        for b in bands:
            canon = s.resolve_band(b, strict=False) or b
            out.append("RGB"[rgb.index(canon)] if canon in rgb and len(rgb) == 3 else b)
        return out

    if sensor is not None:
        s = get_sensor(sensor)
        if check:
            s.band_indices(bands)  # a name that is not a band of the sensor: one line naming it and the valid ones
        return rename(s)
    # a name no built-in sensor knows (a typo, or an extra band such as DEM) does not stop the others resolving
    names = [n for n in sensors_knowing(bands) if SENSORS[n].rgb_bands]
    found = {tuple(rename(SENSORS[n])) for n in names}
    if len(found) > 1:
        raise ambiguous_bands_error(bands, names)
    return list(found.pop()) if found else bands
