"""A raster archive's data sensor and DN rule, checked against its files: the sensor named (or sat493m for 3-band
uint8) matched to the files' band names and read in its band order, names at another position refused, and a
DN -> physical rule a file declares (GDAL scale/offset) other than the sensor's refused, unless `geodino data stack`
wrote it from a Sentinel-2 product's metadata (then the scene is read by it). `RasterArchive`'s
`_check_declared`, `_sensor_rule`, `_same_rule`, `_data_sensor`, `_canonical` and `_check_positions` are these
functions (so patches of its methods still apply)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from geodino.data.archive_bands import _unnamed, canonical_scenes
from geodino.data.rasters import SceneInfo, format_rule
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import InputError, plural

if TYPE_CHECKING:
    import numpy as np

    from geodino.data.archive import RasterArchive


def _yaml_value(values: Sequence[float]) -> str:
    """One value, or a YAML list when the bands differ (as a sensor YAML writes `scale:`/`offset:`)."""
    if len(set(values)) == 1:
        return f"{values[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


STACK_TAG = "GEODINO_STACK_RADIOMETRY"
"""The dataset tag `geodino data stack` writes into a VRT whose bands' scale/offset it took from a Sentinel-2
product's MTD_MSIL2A.xml / MTD_MSIL1C.xml (`geodino.data.vrt._vrt_text`): that rule is the product's own."""


def _check_declared(archive: RasterArchive) -> None:
    """Refuse files whose header declares a DN -> physical rule (GDAL scale/offset) other than the sensor's, except
    the VRTs `geodino data stack` wrote from a Sentinel-2 product's metadata: those are read by their own rule.

    Why not apply each file's rule: two statements disagree and nothing says which is right. The tags may be
    the right one (Sentinel-2 L2A of processing baseline >= 04.00 declares offset -0.1 for DN + 1000) or stale
    (pixels rescaled after the tags were written, a product in other units); the sensor's mean/std, and the
    export that records its scale, assume the sensor's rule. Either silent choice shifts the pixels of some
    scenes (0.1 reflectance in every band) in the pretraining data without a trace, so the user decides, told
    how: files of the declared rule read with a sensor that has it (a source of their own), or the tags
    cleared. A file that declares the sensor's own rule, or none (1/0), passes. A `data stack` VRT (its
    GEODINO_STACK_RADIOMETRY tag) took its rule from the product's MTD file, which says which: each such scene is
    read by its rule into the sensor's physical units (`scene_rules`, applied by `RasterArchive.sample`), so one
    source spans products of both sides of the 04.00 change; only where its scale is the sensor's (`_same_scale`),
    else the rule gives other units than the sensor's. Headers were read once while indexing
    (`SceneInfo.scales`/`offsets`); the tag is read once per scene whose rule differs, here, not per window."""
    want_s = archive._sensor_rule(archive.sensor.scale)
    want_o = archive._sensor_rule(archive.sensor.offset)
    differ = [i for i, sc in enumerate(archive.scenes) if sc.scales and not archive._same_rule(sc, want_s, want_o)]
    own = {i for i in differ if _same_scale(archive.scenes[i], want_s) and _stacked_by_geodino(archive.scenes[i].path)}
    archive.scene_rules = {archive.scenes[i].path: _scene_rule(archive.scenes[i], want_s, want_o) for i in own}
    bad = [archive.scenes[i] for i in differ if i not in own]
    if not bad:
        return
    first = bad[0]
    more = f" (and {plural(len(bad) - 1, 'other raster')} of {len(archive.scenes)})" if len(bad) > 1 else ""
    rule = format_rule(first.scales, first.offsets)
    yaml = f"scale: {_yaml_value(first.scales)} and offset: {_yaml_value(first.offsets)}"
    via = f" ({archive.hints['sensor']})" if archive.hints.get("sensor") else ""
    split = f", {archive.hints['split']} if other files follow the sensor's rule" if archive.hints.get("split") else ""
    raise InputError(
        f"raster {first.path}{more} declares physical value = {rule} (GDAL scale/offset of bands "
        f"{', '.join(first.band_names)}) but sensor {archive.sensor.name!r} reads {format_rule(want_s, want_o)}; if "
        f"the file's rule is right, read it with a sensor YAML of {yaml}{via}{split}; if its tags are wrong, "
        f"clear them (gdal_edit.py -scale 1 -offset 0 FILE, or for a read-only file a VRT: gdal_translate -of "
        f"VRT -a_scale 1 -a_offset 0 FILE FILE.vrt)"
    )


def _same_scale(sc: SceneInfo, scales: Sequence[float]) -> bool:
    """Whether each band declaring a rule has the sensor's scale (only the offset differs, as across the 04.00
    change): then the scene's rule gives the sensor's units. A sensor of other units (a YAML of DN, scale 1) would
    standardise the rule's reflectance by its DN means, so such a scene is refused as any other rule."""
    import math

    return all(
        math.isclose(s, w, rel_tol=1e-6)
        for s, o, w in zip(sc.scales, sc.offsets, scales, strict=True)
        if (s, o) != (1.0, 0.0)
    )


def _stacked_by_geodino(path: str) -> bool:
    """Whether `path` is a VRT `geodino data stack` wrote with a rule from a product's metadata (`STACK_TAG`)."""
    if not path.lower().endswith(".vrt"):
        return False
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            return bool(src.tags().get(STACK_TAG))
    except RasterioError:  # indexed a moment ago, unreadable now: taken as a foreign rule (refused)
        return False


def _scene_rule(sc: SceneInfo, scales: Sequence[float], offsets: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per band read, shaped [C, 1, 1] float32: the scene's declared rule, the sensor's for a band
    declaring none (1/0: SCL, AOT, WVP of a stack)."""
    import numpy as np

    pairs = [
        (s, o) if (s, o) != (1.0, 0.0) else (ws, wo)
        for s, o, ws, wo in zip(sc.scales, sc.offsets, scales, offsets, strict=True)
    ]
    scale, offset = (np.asarray(v, np.float32).reshape(-1, 1, 1) for v in zip(*pairs, strict=True))
    return scale, offset


def _sensor_rule(archive: RasterArchive, value: float | tuple[float, ...]) -> tuple[float, ...]:
    """The sensor's scale or offset, one value per band read."""
    n = len(archive.band_names)
    return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),) * n


def _same_rule(sc: SceneInfo, scales: Sequence[float], offsets: Sequence[float]) -> bool:
    """Whether a scene's declared rule is the sensor's, up to the rounding of a float32 tag."""
    import math

    return all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(sc.scales, scales, strict=True)) and all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(sc.offsets, offsets, strict=True)
    )


def _data_sensor(archive: RasterArchive, sensor: str | Sensor | None) -> Sensor:
    n = len(archive.band_names)
    if sensor is None:
        if n == 3 and archive.scenes[0].dtype == "uint8":
            return get_sensor("sat493m")
        raise InputError(
            f"rasters like {archive.scenes[0].path} ({plural(n, 'band')}, {archive.scenes[0].dtype}) need a sensor: "
            f"set {archive.hints['sensor']} to a built-in name or a YAML written by `geodino data stats`"
        )
    s = get_sensor(sensor)
    unnamed = _unnamed(archive.band_names)
    # names are matched as `bands:` is (exact, alias, any case): "Blue, Green, Red, NIR" are naip's B, G, R, N in
    # that order; b1..bN (positions) only exactly (a data stats YAML of unnamed bands names them so)
    known = [
        s.resolve_band(b, strict=False) if not unnamed or b in s.bands or b in s.aliases else None
        for b in archive.band_names
    ]
    if s.n_bands == n and all(known):
        return archive._canonical(s)
    if s.n_bands == n:
        if not unnamed and not archive.requested_bands:  # the file's own names (`bands:` picks are the user's)
            archive._check_positions(s, known)
        return s
    if _unnamed(archive.band_names) and not set(archive.band_names) <= set(s.bands):
        # b1..bN only say where a band sits in the file, not what it is: matching them to a sensor by name
        # (b4 -> Sentinel-2 B04) would feed one band as another
        raise InputError(
            f"rasters like {archive.scenes[0].path} give {plural(n, 'unnamed band')} ({', '.join(archive.band_names)}) "
            f"but sensor "
            f"{s.name!r} has {s.n_bands} ({', '.join(s.bands)}); name the file's bands (band descriptions in the "
            f"file{', or ' + str(archive.hints['band_names']) if archive.hints['band_names'] else ''}) or use a sensor "
            f"with {plural(n, 'band')}"
        )
    try:
        return archive._canonical(s)
    except InputError as exc:
        raise InputError(
            f"rasters give {plural(n, 'band')} ({', '.join(archive.band_names)}) but sensor {s.name!r} has "
            f"{s.n_bands} ({', '.join(s.bands)}); select bands with {archive.hints['bands']} or use a matching sensor"
        ) from exc


def _canonical(archive: RasterArchive, s: Sensor) -> Sensor:
    """The data sensor of bands the sensor names: without `bands:` every scene is read in the sensor's band
    order (`canonical_scenes`), so files (and sources) storing them in other orders agree; `bands:` picks are
    read in the order given."""
    scenes = None if archive.requested_bands else canonical_scenes(archive.scenes, s, archive.hints)
    if scenes is not None:
        archive.scenes = scenes
        archive.band_names = scenes[0].band_names
    return s.select(list(archive.band_names))


def _check_positions(archive: RasterArchive, s: Sensor, known: Sequence[str | None]) -> None:
    """Refuse band names the sensor knows at another position than the file's, when the sensor is taken
    positionally (not every name is the sensor's): its statistics would standardise one band as another."""
    moved = [
        (i, name, canon)
        for i, (name, canon) in enumerate(zip(archive.band_names, known))
        if canon is not None and s.bands.index(canon) != i
    ]
    if not moved:
        return
    i, name, canon = moved[0]
    fix = " or ".join(h for h in (archive.hints["band_names"], archive.hints["bands"]) if h)
    raise InputError(
        f"rasters like {archive.scenes[0].path} name their bands {', '.join(archive.band_names)} but sensor {s.name!r} "
        f"has {', '.join(s.bands)}: file band {i + 1} {name!r} is the sensor's {canon!r} (band "
        f"{s.bands.index(canon) + 1}), so reading them in file order would mix them up; name every band as the "
        f"sensor does" + (f" ({fix})" if fix else "")
    )


def stack_rule_line(source: Any) -> str | None:
    """One line saying how many scenes of a raster source are read by the DN -> reflectance rule their `geodino data
    stack` VRT took from the product's metadata (`scene_rules`), and how many by the sensor's; None when none is.
    Why: a multi-year Sentinel-2 archive mixes processing baselines before and after 04.00 (offset -0.1), and a
    run that reads them by two rules should say so once at its start (as `data stats` records it), not per scene."""
    counts = stack_rule_counts(source)
    return None if counts is None else f"source {getattr(source, 'name', '?')!r}: {counts}"


def stack_rule_counts(source: Any) -> str | None:
    """`stack_rule_line` without the source's name: what `data stats` records in its YAML (`stats: own_rule`)."""
    archive = getattr(source, "archive", None)
    own = getattr(archive, "scene_rules", None)
    if archive is None or not own:
        return None
    rules = Counter(format_rule(scale.ravel().tolist(), offset.ravel().tolist()) for scale, offset in own.values())
    said = ", ".join(f"{r} for {n}" if len(rules) > 1 else r for r, n in rules.most_common())
    n = len(archive.scenes)
    s = archive.sensor
    sensor = format_rule(archive._sensor_rule(s.scale), archive._sensor_rule(s.offset))
    return (
        f"{len(own)} of {plural(n, 'scene')} read by the rule their `geodino data stack` VRT took from the product's "
        f"metadata ({said}), {n - len(own)} by sensor {s.name}'s {sensor}"
    )
