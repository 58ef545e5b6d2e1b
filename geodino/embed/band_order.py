"""`geodino embed`'s input bands against the backbone's: the same bands in another order are refused in one line
(`geodino.backbones.band_order`, the rule the probes refuse such data by), before anything is written.

The input's bands are named by what names them (`input_band_names`: the file's band descriptions, else `--sensor`'s
names; a cube's band names), so `--bands blue,green,red`, `--bands 3,2,1` and a file stored blue, green, red are all
caught for a backbone that records red, green, blue: blue fed the kernels trained on red, silently. Colour tags
alone are not taken for names here (GDAL tags every 3-band 8-bit GeoTIFF RGB, a BGR one too), nor are positions
(b1..bN). Not reordered: the order read is the one the user chose or the file has, and the line gives both ways
out (read the backbone's order, or adapt the backbone to the input's with `?bands=`, which moves its kernels).
"""

from __future__ import annotations

from typing import Any

from geodino.errors import InputError

__all__ = ["check_band_order", "input_band_names"]


def input_band_names(source: Any, sensor: Any = None) -> list[str] | None:
    """The names of the bands `source` (a `geodino.embed.sources` source, or a window of one) reads, in the order
    read, where something says them: a raster's band descriptions (every band's, all different), else `sensor`'s
    names (a Sensor, `--sensor`) when it has the file's band count; a cube's band names. None otherwise: colour
    tags alone (GDAL tags every 3-band 8-bit GeoTIFF red, green, blue, whatever it holds) or positions b1..bN."""
    base = getattr(source, "base", source)  # a --bbox/--window reads a window of it
    header = getattr(base, "header", None)  # a raster's every band (a cube's `info` names the bands read)
    if header is None:
        return [str(d) for d in base.info.descriptions] if all(base.info.descriptions) else None
    desc = [str(d) for d in header.descriptions if d]
    if len(desc) == header.count and len(set(desc)) == header.count:
        names = desc
    elif sensor is not None and sensor.n_bands == header.count:
        names = list(sensor.bands)
    else:
        return None
    return [names[b - 1] for b in base.bands]


def check_band_order(source: Any, bb: Any, sensor: str | None) -> None:
    """Refuse the input's bands (all, or those `--bands` selects) when they are the backbone `bb`'s recorded bands
    in another order, in one line naming both orders and what to pass."""
    from geodino.backbones.band_order import backbone_sensor, known_bands, other_order
    from geodino.data.sensors import get_sensor

    want = known_bands(bb)
    if want is None:
        return
    s = get_sensor(sensor) if sensor else None
    have = input_band_names(source, s)
    order = other_order(have, want, sensor=s, src_sensor=backbone_sensor(bb))
    if order is None or have is None:
        return
    path, spec = source.info.path, str(getattr(bb, "spec", type(bb).__name__))
    read = [int(b) + (source.kind == "datacube") for b in source.bands]  # a cube's source counts from 0
    numbers = [read[i] for i in order]
    # a spec's kernels move to the order named (`load_backbone(bands=...)`); a module's cannot be named so
    adapt = (
        "" if spec.startswith("<") else f", or adapt the backbone to this one: --backbone '{_with_bands(spec, have)}'"
    )
    raise InputError(
        f"bands {','.join(map(str, read))} of {path} are {', '.join(have)} but backbone {spec} takes "
        f"{', '.join(want)}: the same bands in another order (each would feed the kernels of another); pass --bands "
        f"{','.join(map(str, numbers))} (bands={numbers} in Python) to read them in its order{adapt}"
    )


def _with_bands(spec: str, names: list[str]) -> str:
    """`spec` with `?bands=` naming `names` (`geodino.embed.sources.with_spec_option`)."""
    from geodino.embed.sources import with_spec_option

    return with_spec_option(spec, "bands", ",".join(names))
