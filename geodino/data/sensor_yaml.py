"""Sensor YAML files: a user sensor read (one-line errors naming the file and key) and written atomically. The
layout is in `geodino.data.sensors`' docstring; `geodino data stats` writes complete ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.errors import ConfigError, plural
from geodino.yaml_errors import yaml_problem

if TYPE_CHECKING:
    from geodino.data.sensors import Sensor

__all__ = ["load_sensor_yaml", "save_sensor_yaml"]

_REQUIRED = ("name", "bands", "scale", "mean", "std")
_OPTIONAL = ("rgb_like", "nodata", "offset", "rgb_bands", "aliases")


def load_sensor_yaml(path: str | Path) -> Sensor:
    """Read a user sensor YAML (the layout in this module's docstring); errors name the file and key."""
    import yaml

    from geodino.data.sensors import Sensor, list_sensors

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"sensor file {path} not found; pass a built-in name ({', '.join(list_sensors())}) or a YAML")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"sensor file {path} is not valid YAML{yaml_problem(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"sensor file {path} must hold a mapping (name, bands, scale, mean, std)")
    raw.setdefault("name", path.stem)
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ConfigError(
            f"sensor file {path} is missing {', '.join(missing)}; it needs {', '.join(_REQUIRED)} "
            "(`geodino data stats` writes a complete one)"
        )
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL) - {"source", "description", "stats"})
    if unknown:
        raise ConfigError(
            f"sensor file {path} has {plural(len(unknown), 'unknown key')} ({', '.join(unknown)}); "
            f"valid: {[*_REQUIRED, *_OPTIONAL]}"
        )
    try:
        return Sensor(
            name=str(raw["name"]),
            bands=tuple(raw["bands"]),
            scale=raw["scale"] if isinstance(raw["scale"], (int, float)) else tuple(raw["scale"]),
            mean=tuple(raw["mean"]),
            std=tuple(raw["std"]),
            rgb_like=bool(raw.get("rgb_like", False)),
            nodata=raw.get("nodata"),
            offset=raw.get("offset", 0.0) if isinstance(raw.get("offset", 0.0), (int, float)) else tuple(raw["offset"]),
            rgb_bands=tuple(raw["rgb_bands"]) if raw.get("rgb_bands") else None,
            aliases=raw.get("aliases") or {},
            source=str(path),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"sensor file {path} has a bad value: {exc}") from exc


def save_sensor_yaml(sensor: Sensor, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
    """Write `sensor` as YAML atomically (plus optional `extra` keys such as the stats provenance)."""
    import yaml

    from geodino.io import atomic_path

    data = sensor.to_dict()
    if extra:
        data.update(extra)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120))
    return path
