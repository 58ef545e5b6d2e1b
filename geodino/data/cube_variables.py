"""Datacubes storing one data variable per band (B02, B03, ... each a (time?, y, x) array), as many Zarr/NetCDF
exports do: which variables `open_cube` stacks into the band dimension, and in what order.

Rasters read their bands in the sensor's order by band description; a store of per-band variables is read the same
way by variable name (exact, any case, or a common name such as `red`/`nir`), with or without `bands:`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geodino.data.sensors import Sensor
from geodino.errors import InputError, MissingBandError, plural

__all__ = ["band_variables", "data_variable", "data_variables", "same_bands", "shown"]


def data_variables(ds: Any) -> list[str]:
    """The data variables of a store that can hold image bands: 2-D or larger, not the grid-mapping variable."""
    return [str(v) for v in ds.data_vars if ds[v].ndim >= 2 and v != "spatial_ref"]


def shown(names: Sequence[str], n: int = 8) -> str:
    """Up to `n` names for a message, and how many there are in all when more."""
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def band_variables(
    ds: Any, path: str, bands: Sequence[str] | None, sensor: Sensor | None, time_dim: str
) -> list[str] | None:
    """The variables to stack as bands, in order, or None to read one variable (its own band dimension, if any).

    With `bands`: the variable each band names (exactly, else any case or the same sensor band: `red` for B04),
    None unless every band names one. Without: the variables naming the sensor's bands in the sensor's order, when
    two or more name one (some of the sensor's bands: those, as a band coordinate naming some is read; other
    variables such as a QA layer are left out); two naming one band are refused in one line, and so is a store of
    several same-shaped single-band variables naming none (it would be read as its first variable's one band).
    """
    cands = data_variables(ds)
    if len(cands) < 2:
        return None

    def canon(name: str) -> str | None:
        return sensor.resolve_band(name, strict=False) if sensor is not None else None

    if bands:
        out: list[str] = []
        for b in bands:
            low = str(b).lower()
            hit = next((v for v in cands if v == b), None) or next((v for v in cands if v.lower() == low), None)
            if hit is None and canon(str(b)) is not None:
                hit = next((v for v in cands if canon(v) == canon(str(b))), None)
            if hit is None and out:  # some bands name variables, this one none: one line naming the variables
                raise MissingBandError(
                    f"datacube {path} has no variable for band {b!r} (its variables: {shown(cands)}); fix `bands:`",
                    source=f"datacube {path}",
                    band=str(b),
                    names=tuple(cands),
                )
            if hit is None:
                return None
            out.append(hit)
        return out
    if sensor is None:
        return None
    named: dict[str, list[str]] = {}
    for v in cands:
        if (c := canon(v)) is not None:
            named.setdefault(c, []).append(v)
    if sum(len(vs) for vs in named.values()) < 2:
        _refuse_unnamed_planes(ds, path, cands, sensor, time_dim)
        return None
    twice = [vs for vs in named.values() if len(vs) > 1]
    if twice:
        raise InputError(
            f"datacube {path} holds one variable per band ({shown([v for vs in named.values() for v in vs])}) "
            f"but {' and '.join(twice[0])} name the same band of sensor {sensor.name!r}; pick the variables with "
            "`bands:`"
        )
    return [named[b][0] for b in sensor.bands if b in named]  # some of them: the sensor narrows, as for bands


def _refuse_unnamed_planes(ds: Any, path: str, cands: list[str], sensor: Sensor, time_dim: str) -> None:
    """One line for a store of several same-shaped single-band variables none of which names a sensor band, under
    a sensor of several bands: reading its largest variable would give one band."""
    widest = max(cands, key=lambda v: ds[v].ndim)
    dims = tuple(ds[widest].dims)
    planes = [v for v in cands if tuple(ds[v].dims) == dims]
    if sensor.n_bands < 2 or len(planes) < 2 or len([d for d in dims if d != time_dim]) != 2:
        return
    raise InputError(
        f"datacube {path} holds {len(planes)} single-band variables ({shown(planes)}) whose names are not the "
        f"bands of sensor {sensor.name!r} ({', '.join(sensor.bands)}); read them as one variable per band with "
        f"`bands:` listing them in the sensor's band order, or pick one array with `variable:`"
    )


_ALIKE_SAID: set[str] = set()  # stores already warned of their several same-shaped variables in this process


def data_variable(ds: Any, path: str, variable: str | None) -> str:
    """The named data variable, or the one with the most dims (2-D or more). When others have the same dims (two
    images `a`, `b` of (band, y, x)) the first is read as before, with one warning per store naming them all and
    --variable: it was read without a word, another image of the file never looked at."""
    if variable is None:
        cands = data_variables(ds)
        if not cands:
            raise InputError(f"datacube {path} has no 2-D or larger data variable; set `variable:`")
        variable = max(cands, key=lambda v: ds[v].ndim)
        alike = [v for v in cands if ds[v].dims == ds[variable].dims]
        if len(alike) > 1 and path not in _ALIKE_SAID:
            import warnings

            _ALIKE_SAID.add(path)
            dims = ", ".join(map(str, ds[variable].dims))
            warnings.warn(
                f"datacube {path} holds {len(alike)} data variables of dimensions ({dims}): {shown(alike)}; reading "
                f"{variable}: pick another with --variable NAME (variable= in Python, `variable:` in a config), or "
                "stack single-band ones as bands with --bands NAME,NAME,...",
                stacklevel=3,
            )
    if variable not in ds.data_vars:
        raise InputError(
            f"datacube {path} has no variable {variable!r} (variables: {', '.join(map(str, ds.data_vars))})"
        )
    return variable


def same_bands(scenes: Sequence[Any], sensor: Sensor | None) -> None:
    """Refuse stores of one cube source that give different bands (by name: the sensor's band a name stands for,
    else the name in any case); a count alone let B02,B03,B04,B05 be fed as B02,B03,B04,B08. Stores naming no
    bands (b1..bN, or the sensor's names given positionally) compare equal when their counts do."""

    def key(names: Sequence[str]) -> tuple[str, ...]:
        canon = [sensor.resolve_band(n, strict=False) if sensor is not None else None for n in names]
        return tuple(c or n.lower() for n, c in zip(names, canon, strict=True))

    first = scenes[0]
    for sc in scenes[1:]:
        if len(sc.band_names) != len(first.band_names):
            raise InputError(
                f"datacube {sc.path} has {plural(len(sc.band_names), 'band')} but {first.path} has "
                f"{len(first.band_names)}"
            )
        if key(sc.band_names) != key(first.band_names):
            raise InputError(
                f"datacube {sc.path} gives bands {', '.join(sc.band_names)} but {first.path} gives "
                f"{', '.join(first.band_names)}; select the same bands with `bands:` or give the stores as separate "
                "sources"
            )
