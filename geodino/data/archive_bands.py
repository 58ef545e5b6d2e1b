"""Band naming and reading order of raster archive files (`geodino.data.archive`): which file band is which, and
the one order every scene is read in.

Why one canonical order: two files (or two sources) holding the same bands in different orders would otherwise
each be read in their own order, so one model channel would be SR_B2 in some batches and SR_B5 in others, and be
standardised with one band's statistics throughout. Files whose bands the sensor names are read in the sensor's
band order, whatever order they store them in (`canonical_scenes` permutes the band indexes read).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from geodino.data.colour_bands import colour_positions, file_band_names, tags_only_note
from geodino.data.rasters import SceneInfo
from geodino.data.sensors import Sensor
from geodino.errors import DuplicateBandError, InputError, MissingBandError

__all__ = [
    "CONFIG_HINTS",
    "QA_BAND_NAMES",
    "canonical_scenes",
    "qa_kind",
    "sensor_order",
    "skip_hint",
    "warn_qa_model_bands",
]


def _file_band_names(src: Any, sensor: Any = None) -> tuple[str, ...] | None:
    """The raster's own band names: descriptions, else its colour interpretation's red/green/blue unless `sensor`
    has its band count (`geodino.data.colour_bands.file_band_names`)."""
    return file_band_names(src, sensor)


def _unnamed(names: Sequence[str]) -> bool:
    """Whether `names` are only positions (b1, b4, ...: a file without band descriptions)."""
    return all(re.fullmatch(r"b\d+", n) for n in names)


CONFIG_HINTS: dict[str, str | None] = {
    "bands": "`bands:`",
    "band_names": "`band_names:`",
    "sensor": "`sensor:`",
    "skip": "set on_error: skip",
    "split": "split them into separate sources",
    "nodata": "set the source's `nodata:`",
}
"""How messages name the settings (a source config's keys); a command passes its own flags (None: it has none)."""


def skip_hint(hints: Mapping[str, str | None]) -> str:
    """The way to leave a broken file out, as a raster message under on_error: stop ends: " (HINT to leave such
    files out)", or "" for a command without such a setting."""
    return f" ({hints['skip']} to leave such files out)" if hints.get("skip") else ""


def _resolve_bands(
    path: str,
    names: tuple[str, ...],
    requested: Sequence[str] | None,
    sensor: Sensor | None,
    hints: Mapping[str, str | None] = CONFIG_HINTS,
    tagged: bool = False,
    guess: str | None = None,
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Output band names and the 1-based file indexes to read for them. `tagged`: `names` are the file's colour
    tags alone (`colour_bands.only_colour_tags`), which a refusal then says (`colour_bands.tags_only_note`).
    `guess`: why a pick by those colour names would be a guess (`colour_bands.guessed_colour_pick`): such a pick is
    refused in one line saying so, a pick by position (b1..bN) is not."""
    if not requested:
        return names, tuple(range(1, len(names) + 1))
    lookup = {n.lower(): i for i, n in enumerate(names)}
    for i, n in enumerate(names if sensor else ()):  # the file's names as the sensor reads them (B04_10m: B04)
        canon_n = sensor.resolve_band(n, strict=False)  # type: ignore[union-attr]
        if canon_n is not None:
            lookup.setdefault(canon_n.lower(), i)
    positions = colour_positions(names)  # b1..bN still name a colour-named file's bands by position
    for k, i in positions.items():
        lookup.setdefault(k, i)
    out_names: list[str] = []
    idx: list[int] = []
    for want in requested:
        canon = sensor.resolve_band(want, strict=False) if sensor else None
        for cand in (want, canon):
            if cand is not None and cand.lower() in lookup:
                if guess and cand.lower() not in positions:
                    raise InputError(
                        f"raster {path}: {want!r} would read its band {lookup[cand.lower()] + 1} by its colour tag "
                        f"({names[lookup[cand.lower()]]}), but {guess}; "
                        + (
                            f"name its bands in order with {hints['band_names']} (e.g. [N, R, G] or [R, G, B]) or "
                            f"pick them by position ({', '.join(positions)})"
                            if hints["band_names"]
                            else f"pick them by number ({hints['bands']} {','.join(p[1:] for p in positions)})"
                        )
                    )
                idx.append(lookup[cand.lower()] + 1)
                # a position of a colour-named file reads as the band's name (b3 of an RGB file is blue), so a
                # sensor YAML that names it so matches it
                by_position = cand.lower() in positions and cand.lower() not in {n.lower() for n in names}
                out_names.append(names[lookup[cand.lower()]] if by_position else canon or want)
                break
        else:
            via = " / ".join(h for h in (hints["band_names"], hints["sensor"]) if h)
            words = want.split()
            spaced = len(words) > 1 and all(w.lower() in lookup or (sensor and sensor.resolve_band(w, strict=False))
                                            for w in words)  # fmt: skip
            raise MissingBandError(
                f"raster {path} has no band {want!r} (its bands: {', '.join(names)}); "
                + (
                    f"{want!r} is one name: list band names apart by commas ({','.join(words)}), not spaces"
                    if spaced
                    else f"bands are named here, not numbered: a raster whose bands carry no names calls them b1, "
                    f"b2 ..., so write {_b_names(requested, want, names)} in {hints['bands']}"
                    if want.isdigit() and 1 <= int(want) <= len(names) and names[int(want) - 1] == f"b{int(want)}"
                    else f"bands are named here, not numbered: write {_b_names(requested, want, names)} in "
                    f"{hints['bands']} (the file's names of those bands)"
                    if want.isdigit() and 1 <= int(want) <= len(names)
                    else f"fix {hints['bands']}"
                    + (f" or name the file's bands with {via}" if via else "")
                    + (f"; {tags_only_note(len(names), hints['sensor'])}" if tagged and via else "")
                ),
                source=f"raster {path}",
                band=want,
                names=names,
            )
    _refuse_twice(path, requested, idx, names, hints)
    return tuple(out_names), tuple(idx)


def _refuse_twice(
    path: str, requested: Sequence[str], idx: Sequence[int], names: Sequence[str], hints: Mapping[str, str | None]
) -> None:
    """One line when two requested names pick the same file band (`[red, red]`, or `[b1, red]` of an RGB file,
    whose b1 is red; `[B04, red]` with a Sentinel-2 sensor): that band would be read twice, as two model inputs,
    and the band meant for the other left out."""
    first: dict[int, str] = {}
    for want, i in zip(requested, idx):
        if i not in first:
            first[i] = want
            continue
        said = hints.get("bands") or "the bands"
        same = (
            f"names {want} twice (band {i} of raster {path})"
            if want.lower() == first[i].lower()
            else f"{first[i]} and {want} are both band {i} ({names[i - 1]}) of raster {path}"
        )  # as embed's --bands says it (`geodino.embed.command_flags`)
        raise DuplicateBandError(
            f"{said} {same}; name each band once", first=first[i], second=want, band=i, name=names[i - 1]
        )


def _b_names(requested: Sequence[str], want: str, names: Sequence[str]) -> str:
    """The file's names to write for band numbers given as names: every requested one when all are numbers the file
    has (`bands: [1, 2]`, read as the names '1', '2': b1, b2 of a file without names, red, green of an RGB one),
    else the one not found."""
    if all(r.isdigit() and 1 <= int(r) <= len(names) for r in requested):
        return ", ".join(names[int(r) - 1] for r in requested)
    return names[int(want) - 1]


def sensor_order(names: Sequence[str], sensor: Sensor) -> tuple[list[int], tuple[str, ...]] | None:
    """The positions of `names` in `sensor`'s band order and the sensor's names for them, or None unless every name
    is a distinct band of the sensor (by name, alias such as `red`/`nir`, or case-insensitively). Shared by raster
    scenes and datacubes, so both read the bands the sensor names in its order."""
    canon = [sensor.resolve_band(str(b), strict=False) for b in names]
    if None in canon or len(set(canon)) != len(canon):
        return None
    perm = sorted(range(len(canon)), key=lambda i: sensor.bands.index(canon[i]))
    return perm, tuple(canon[i] for i in perm)  # type: ignore[misc]


def canonical_scenes(
    scenes: Sequence[SceneInfo], sensor: Sensor, hints: Mapping[str, str | None] = CONFIG_HINTS
) -> list[SceneInfo] | None:
    """`scenes` with their bands read in `sensor`'s band order, or None when some scene's band names are not all
    the sensor's (distinct) bands: those are read as the files give them (positionally; see the archive).

    Each scene is permuted by its own names, so files storing the same bands in different orders all give the
    sensor's order. Scenes naming different sets of the sensor's bands are refused in one line naming two of them.
    """
    out: list[SceneInfo] = []
    first: tuple[str, ...] | None = None
    for sc in scenes:
        order = sensor_order(sc.band_names, sensor)
        if order is None:
            return None
        perm, ordered = order
        if first is None:
            first = ordered
        elif ordered != first:
            raise InputError(
                f"raster {sc.path} gives bands {', '.join(ordered)} but {scenes[0].path} gives {', '.join(first)}; "
                f"select the same bands with {hints['bands']} or {hints['split']}"
            )

        def pick(values: tuple[Any, ...], perm: list[int] = perm) -> tuple[Any, ...]:
            return tuple(values[i] for i in perm) if values else values

        out.append(
            dataclasses.replace(
                sc,
                band_names=tuple(  # a tagged name (B04_10m) as the sensor names it; others as the file does
                    n if sensor.resolve_band(n, strict=False, tags=False) else c
                    for n, c in zip(pick(sc.band_names), ordered)
                ),
                band_indexes=pick(sc.band_indexes),
                scales=pick(sc.scales),
                offsets=pick(sc.offsets),
            )
        )
    return out


QA_BAND_NAMES = ("scl", "qa60", "qa_pixel")
"""Quality bands (Sentinel-2 L2A scene classes, Sentinel-2 L1C QA60 bits, Landsat C2 QA_PIXEL bits), by name,
case-insensitive: codes, not measurements (`geodino.data.curate.qaband` reads them for the cloud screen).
A resolution tag after the name is the same band (`qa_kind`: SCL_20m, SCL_60m of a Sentinel-2 L2A SAFE)."""

_RES_TAG = re.compile(r"_\d+(?:\.\d+)?m$", re.IGNORECASE)  # SAFE L2A T33UUP_..._SCL_20m: the band at 20 m


def qa_kind(name: object) -> str | None:
    """The QA encoding a band name stands for (one of `QA_BAND_NAMES`, lower case) or None: the name itself, or
    the name less a SAFE-style resolution tag (`SCL_20m` and `scl_60m` -> `scl`, `QA60_60m` -> `qa60`), which is
    how `data stack --bands SCL_20m` names the band it stacks (its VRT band description)."""
    low = str(name).lower()
    low = low if low in QA_BAND_NAMES else _RES_TAG.sub("", low)
    return low if low in QA_BAND_NAMES else None


def warn_qa_model_bands(names: Sequence[str], hints: Mapping[str, str | None] = CONFIG_HINTS) -> list[str]:
    """Warn, in one line, when a QA band (`qa_kind`: SCL, QA60, QA_PIXEL, SCL_20m) is among the model inputs;
    returns those names. The backbone would get class codes or bit flags standardised like reflectance, and every
    resampling on the way (a reprojection's bilinear warp, the crops' bicubic resize) interpolates them into values
    no file holds (between SCL 3, cloud shadow, and 4, vegetation: 3.6); the cloud screen reads such a band
    apart instead."""
    qa = [str(n) for n in names if qa_kind(n)]
    if qa:
        which = f"band {qa[0]} is a QA band" if len(qa) == 1 else f"bands {', '.join(qa)} are QA bands"
        bands = hints.get("bands") or "the bands read"
        warnings.warn(
            f"{which} (class codes / bit flags, not reflectance) read as a model input: the backbone gets "
            f"{'it' if len(qa) == 1 else 'them'} standardised like a spectral band, and resampling (reprojection, "
            f"crop resizing) interpolates the codes into values the file does not hold; leave "
            f"{'it' if len(qa) == 1 else 'them'} out of {bands} and screen clouds with "
            f"`geodino data curate --qa-band {qa[0]}` instead",
            stacklevel=3,
        )
    return qa
