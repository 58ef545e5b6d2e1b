"""Whether the bands fed to a backbone are its own bands in another order: the one rule `geodino embed` and the
probes refuse such input by.

Channels reach a backbone by position, and only their count was checked, so blue, green, red read where the
backbone learned red, green, blue ran without a word: blue fed the kernels trained on red. Names are compared as
the band-adaptation rule matches them (`geodino.models.checkpoints.bands.band_matches`: case-insensitive, red = R,
a sensor's aliases such as Sentinel-2 B04 = red), so `--bands blue,green,red` on a file of B02, B03, B04 is caught
for a backbone that records B04, B03, B02. Positions (b1..bN: bands of files without names) are no names and are
never compared, nor is the 3-band default R, G, B that nothing recorded (`known_bands`).
`load_backbone(bands=[...])` (`?bands=` in a spec, the probes' `backbone_bands`) is the other side of the rule: it
moves the kernels to the order named, so that backbone then takes its input in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geodino.errors import GeoDinoError

__all__ = ["backbone_sensor", "known_bands", "other_order"]

_DEFAULT_RGB = ["R", "G", "B"]  # `sensor_stats`' names for a 3-band backbone that nothing names (ImageNet default)


def known_bands(backbone: Any) -> list[str] | None:
    """The backbone's band names when something says them: a record (an export's sidecar, a `data stats` YAML), a
    sensor, or names given to `load_backbone(bands=...)`; None for no names, positions b1..bN, or the unrecorded
    3-band default R, G, B (a random `arch:` or timm model), which says nothing about the order it learned."""
    from geodino.models.checkpoints.bands import band_positions

    names = [str(b) for b in getattr(backbone, "bands", None) or ()]
    if not names or band_positions(names):
        return None
    told = getattr(backbone, "normalization", None) is not None or getattr(backbone, "sensor", None) is not None
    return names if told or names != _DEFAULT_RGB else None


def backbone_sensor(backbone: Any) -> str | None:
    """The name of the sensor a backbone's bands are named after (its record's, else its sensor's), or None."""
    rec = getattr(backbone, "normalization", None)
    name = rec.get("sensor") if isinstance(rec, dict) else None
    s = getattr(backbone, "sensor", None)
    return str(name or getattr(s, "name", s) or "") or None


def other_order(
    have: Sequence[str] | None, want: Sequence[str] | None, *, sensor: Any = None, src_sensor: str | None = None
) -> list[int] | None:
    """For each band of `want` (a backbone's, in its order), the position in `have` (the input's band names, in the
    order read) of the same band, when `have` are exactly `want`'s bands in another order; None when they are in
    the same order, are other bands, or cannot be compared (a name missing, positions b1..bN, names the built-in
    sensors read differently without `sensor`). `sensor`: the data's sensor (name or Sensor), whose aliases match;
    `src_sensor`: the sensor the backbone records, whose numbering decides otherwise."""
    from geodino.models.checkpoints.bands import band_matches, band_positions

    if not have or not want or len(have) != len(want) or not all(have) or not all(want):
        return None
    have, want = [str(b) for b in have], [str(b) for b in want]
    if band_positions(have) or band_positions(want):
        return None
    try:
        found = band_matches(want, have, src_sensor=src_sensor, sensor=sensor)  # index in have -> index in want
    except GeoDinoError:  # an unknown sensor, or names that sensors number differently: nothing to go by
        return None
    if len(found) != len(want) or sorted(found.values()) != list(range(len(want))):
        return None
    order = [0] * len(want)
    for i, j in found.items():
        order[j] = i
    return None if order == list(range(len(want))) else order
