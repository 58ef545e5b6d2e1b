"""The input normalisation of a frozen backbone: a sensor's statistics, or the ImageNet / SAT-493M / identity
defaults."""

from __future__ import annotations

from typing import Any

from geodino.errors import ConfigError, InputError, plural

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SAT493M_MEAN = (0.430, 0.411, 0.296)
SAT493M_STD = (0.213, 0.156, 0.143)


def sensor_stats(
    sensor: Any, bands: list[str] | None, in_chans: int, spec: str, default: str | None
) -> tuple[Any, list[float], list[float], list[str] | None]:
    """(sensor object or name, mean, std, band names) for normalisation.

    Sensors come from `geodino.data.sensors.get_sensor`; without a sensor, 3-band backbones use the ImageNet
    statistics (SAT-493M for files whose name says sat493m) and others the identity (mean 0, std 1).
    """
    if sensor is None and default is not None and in_chans == 3:
        sensor = default
    if sensor is None:
        if in_chans == 3:
            return None, list(IMAGENET_MEAN), list(IMAGENET_STD), bands or ["R", "G", "B"]
        return None, [0.0] * in_chans, [1.0] * in_chans, bands
    try:
        from geodino.data.sensors import get_sensor
    except ImportError:  # the data part is optional for pure-model use: keep the built-in RGB statistics
        name = str(sensor).lower()
        if name in ("sat493m", "sat", "maxar") and in_chans == 3:
            return name, list(SAT493M_MEAN), list(SAT493M_STD), ["R", "G", "B"]
        if name in ("imagenet", "rgb", "web") and in_chans == 3:
            return name, list(IMAGENET_MEAN), list(IMAGENET_STD), ["R", "G", "B"]
        raise ConfigError(f"sensor {sensor!r} needs geodino.data.sensors, which is not available") from None
    s = get_sensor(sensor)
    if bands is not None and len(bands) == in_chans:
        try:
            s = s.select([_sensor_band(s, b) for b in bands])
        except InputError as exc:
            raise ConfigError(f"backbone {spec}: {exc}") from exc
    if s.n_bands != in_chans:
        raise ConfigError(
            f"sensor {s.name!r} has {plural(s.n_bands, 'band')} ({', '.join(s.bands)}) but backbone {spec} takes "
            f"{in_chans}; "
            "pass bands=[...] naming the backbone's bands, or adapt the backbone with bands="
        )
    return s, list(s.mean), list(s.std), list(s.bands)


def _sensor_band(s: Any, name: str) -> str:
    """`name` as the sensor `s` knows it: a generic R, G or B (an RGB checkpoint's own names) is the sensor's red,
    green or blue band when the sensor has no band of that name (sentinel2_l2a's B04 for R). A 3-band file loaded
    with `sensor="sentinel2_l2a"` was refused: "band 'R' is not a band of sensor 'sentinel2_l2a'"."""
    from geodino.models.checkpoints.bands import rgb_canonical

    rgb = list(getattr(s, "rgb_bands", None) or [])
    canon = rgb_canonical(str(name))
    if s.resolve_band(str(name), strict=False) is None and canon in ("R", "G", "B") and len(rgb) == 3:
        return str(rgb["RGB".index(canon)])
    return str(name)


def reordering(src: list[str] | None, names: list[str] | None) -> list[int] | None:
    """For each of `names`, the index of the same band among the file's bands `src` (R = red ...), when `names` are
    exactly the file's bands in another order; else None (other bands: the file's 3-band defaults do not apply)."""
    from geodino.models.checkpoints.bands import match_bands

    if not src or not names or len(src) != len(names):
        return None
    found = match_bands(src, names)
    order = [found.get(j, -1) for j in range(len(names))]
    return order if sorted(order) == list(range(len(src))) else None


def reordered(stats: tuple[Any, Any, Any, Any], order: list[int], names: list[str]) -> tuple[Any, Any, Any, Any]:
    """`sensor_stats`' (sensor, mean, std, bands) of the file's bands, in the order of `names` (`reordering`): a
    BGR input to an RGB file gets blue's mean/std for its first band, not red's."""
    s, mean, std, _ = stats
    if s is not None and not isinstance(s, str):
        s = s.select([s.bands[i] for i in order])
    return s, [mean[i] for i in order], [std[i] for i in order], names
