"""Sensors: band names, DN-to-reflectance scale and per-band statistics for known sensors and user YAML files.

The data's sensor decides the scale (DN -> physical units); the backbone's sensor decides the mean/std used to
standardise. Shipping explicit per-band statistics with each sensor avoids the silent /255 fallbacks users hit
elsewhere (torchgeo #2175, #4051, #4061, #4089).

A user sensor is a YAML file::

    name: my_s2
    bands: [B02, B03, B04, B08]
    scale: 0.0001          # one value, or one per band
    offset: 0.0            # reflectance = DN * scale + offset
    mean: [0.08, 0.10, 0.11, 0.25]   # in reflectance units (after scale and offset)
    std: [0.13, 0.13, 0.14, 0.14]
    rgb_like: false
    nodata: 0
    rgb_bands: [B04, B03, B02]       # optional, used for previews
    aliases: {blue: B02, green: B03, red: B04, nir: B08}   # optional

`geodino data stats PATH --out my_sensor.yaml` computes mean/std over an archive and writes such a file.

The built-in sensors are tabled in `sensor_table` (`SENSORS`, loaded on first use). User sensor files are read and
written in `sensor_yaml`, the DN range checked against the scale in `bit_depth`, and band names resolved across the
built-in sensors in `band_names`; all are re-exported here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodino.data.band_names import ambiguous_bands_error, band_meaning, known_band_names, sensors_knowing
from geodino.data.band_names import rgb_names as rgb_names  # re-exported: models.checkpoints.bands imports it
from geodino.data.bit_depth import check_bit_depth, check_read_values, scales_8bit, scales_16bit
from geodino.data.sensor_yaml import load_sensor_yaml, save_sensor_yaml
from geodino.errors import ConfigError, InputError, did_you_mean, plural
from geodino.lazy import lazy_names

if TYPE_CHECKING:  # at run time SENSORS loads on first use (`__getattr__`): the table's module imports Sensor
    from geodino.data.sensor_table import SENSORS

__all__ = [
    "SENSORS",
    "Sensor",
    "ambiguous_bands_error",
    "band_meaning",
    "check_bit_depth",
    "check_read_values",
    "get_sensor",
    "known_band_names",
    "list_sensors",
    "load_sensor_yaml",
    "save_sensor_yaml",
    "scales_8bit",
    "scales_16bit",
    "sensors_knowing",
]

# the built-in table (sensor_table.py) builds Sensor objects, so it imports this module: read from there on first
# use, `from geodino.data.sensors import SENSORS` (geodino's modules and tests) keeps working
__getattr__, __dir__ = lazy_names(__name__, {"SENSORS": "geodino.data.sensor_table"})


def _floats(values: Any, n: int | None = None) -> tuple[float, ...]:
    if isinstance(values, (int, float, np.floating, np.integer)):
        return (float(values),) if n is None else (float(values),) * n
    return tuple(float(v) for v in values)


_RES_TAG = re.compile(r"_\d+(?:\.\d+)?m$", re.IGNORECASE)  # B04_10m of a Sentinel-2 L2A SAFE: band B04 at 10 m


@dataclasses.dataclass(frozen=True)
class Sensor:
    """A sensor: band names, scale (DN -> reflectance), per-band mean/std (in reflectance units).

    `scale` and `offset` are floats or one value per band; `mean`/`std` have one value per band.
    """

    name: str
    bands: tuple[str, ...]
    scale: float | tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rgb_like: bool
    nodata: float | None = None
    offset: float | tuple[float, ...] = 0.0
    rgb_bands: tuple[str, ...] | None = None
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(str(b) for b in self.bands))
        object.__setattr__(self, "mean", _floats(self.mean))
        object.__setattr__(self, "std", _floats(self.std))
        if not isinstance(self.scale, (int, float)):
            object.__setattr__(self, "scale", _floats(self.scale))
        if not isinstance(self.offset, (int, float)):
            object.__setattr__(self, "offset", _floats(self.offset))
        if self.rgb_bands is not None:
            object.__setattr__(self, "rgb_bands", tuple(self.rgb_bands))
        object.__setattr__(self, "aliases", dict(self.aliases or {}))
        n = len(self.bands)
        where = f"sensor {self.name!r}" + (f" ({self.source})" if self.source else "")
        if n == 0:
            raise ConfigError(f"{where} has no bands; list the band names under 'bands'")
        if len(set(self.bands)) != n:
            raise ConfigError(f"{where} lists a band twice in {list(self.bands)}; band names must be unique")
        for key in ("mean", "std"):
            got = len(getattr(self, key))
            if got != n:
                raise ConfigError(
                    f"{where}: '{key}' has {plural(got, 'value')} but 'bands' has {n} ({', '.join(self.bands)}); "
                    f"give one {key} per band (run `geodino data stats` to compute them)"
                )
        for key in ("scale", "offset"):
            val = getattr(self, key)
            if isinstance(val, tuple) and len(val) != n:
                raise ConfigError(
                    f"{where}: '{key}' has {plural(len(val), 'value')} but there {'is' if n == 1 else 'are'} "
                    f"{plural(n, 'band')}; give 1 or {n}"
                )
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"{where}: every 'std' must be > 0, got {list(self.std)}")
        if self.rgb_bands is not None:
            missing = [b for b in self.rgb_bands if self.resolve_band(b, strict=False) is None]
            if missing:
                raise ConfigError(f"{where}: rgb_bands {missing} are not among bands {list(self.bands)}")

    # -- bands -------------------------------------------------------------------------------------------------
    @property
    def n_bands(self) -> int:
        return len(self.bands)

    def resolve_band(self, name: str, *, strict: bool = True, tags: bool = True) -> str | None:
        """The canonical band name for `name` (exact, alias, or case-insensitive match; else, the name less a
        trailing resolution tag `_NNm` when that is one, never the tag stripped from a name known as written;
        `tags=False`: names known as written only)."""
        if name in self.bands:
            return name
        if name in self.aliases:
            return self.aliases[name]
        low = {b.lower(): b for b in self.bands}
        low.update({a.lower(): b for a, b in self.aliases.items()})
        if name.lower() in low:
            return low[name.lower()]
        bare = _RES_TAG.sub("", name)  # a SAFE resolution tag (B04_10m, B8A_20m) is the band, as qa_kind reads SCL_20m
        canon = self.resolve_band(bare, strict=False) if tags and bare != name else None
        if canon is not None:
            return canon
        if strict:
            close = did_you_mean(name, [*self.bands, *self.aliases], n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(
                f"band {name!r} is not a band of sensor {self.name!r} (bands: {', '.join(self.bands)}){hint}"
            )
        return None

    def band_indices(self, band_names: Sequence[str]) -> list[int]:
        """Zero-based indices of `band_names` in this sensor's band order."""
        return [self.bands.index(self.resolve_band(b)) for b in band_names]

    def select(self, band_names: Sequence[str]) -> Sensor:
        """A sensor restricted to `band_names` (in that order), with matching scale/mean/std."""
        idx = self.band_indices(list(band_names))

        def pick(v: Any) -> Any:
            return tuple(v[i] for i in idx) if isinstance(v, tuple) else v

        bands = tuple(self.bands[i] for i in idx)
        rgb = self.rgb_bands if self.rgb_bands and all(b in bands for b in self.rgb_bands) else None
        return dataclasses.replace(
            self,
            bands=bands,
            scale=pick(self.scale),
            offset=pick(self.offset),
            mean=pick(self.mean),
            std=pick(self.std),
            rgb_bands=rgb,
            aliases={a: b for a, b in self.aliases.items() if b in bands},
        )

    # -- arithmetic --------------------------------------------------------------------------------------------
    @staticmethod
    def _per_band(values: float | tuple[float, ...], x: Any) -> Any:
        """`values` shaped to broadcast over channel-first `x` ([C,H,W], [B,C,H,W], [C] ...)."""
        if isinstance(values, (int, float)):
            return float(values)
        arr = np.asarray(values, dtype=np.float32)
        if x.ndim >= 3:
            arr = arr.reshape(-1, 1, 1)
        elif x.ndim == 2:  # [C, N] pixel lists
            arr = arr.reshape(-1, 1)
        if _is_torch(x):
            import torch

            return torch.as_tensor(arr, device=x.device, dtype=x.dtype if x.dtype.is_floating_point else None)
        return arr

    def _check_channels(self, x: Any) -> None:
        c = x.shape[-3] if x.ndim >= 3 else x.shape[0]
        if c != self.n_bands:
            raise InputError(
                f"sensor {self.name!r} has {plural(self.n_bands, 'band')} ({', '.join(self.bands)}) but the image "
                f"has {plural(c, 'channel')}; select the matching bands (sensor.select([...]) or `bands:` in the "
                "config)"
            )

    def to_reflectance(self, x: Any) -> Any:
        """DN -> physical units: `x * scale + offset` (float32; numpy arrays or torch tensors, channel-first)."""
        self._check_channels(x)
        has_offset = self.offset != 0.0 and self.offset != ()
        if not _is_torch(x):  # one pass from any dtype to float32 (the reader's hot path)
            x = np.asarray(x)
            dtype = np.float64 if x.dtype == np.float64 else np.float32
            out = np.multiply(x, np.asarray(self._per_band(self.scale, x), dtype=dtype), dtype=dtype)
            if has_offset:
                out += np.asarray(self._per_band(self.offset, x), dtype=dtype)
            return out
        x = _as_float(x)
        out = x * self._per_band(self.scale, x)
        if has_offset:
            out = out + self._per_band(self.offset, x)
        return out

    def standardize(self, x: Any) -> Any:
        """`(x - mean) / std` per band on reflectance-scaled input."""
        self._check_channels(x)
        x = _as_float(x)
        return (x - self._per_band(self.mean, x)) / self._per_band(self.std, x)

    def destandardize(self, x: Any) -> Any:
        """Inverse of `standardize` (for previews)."""
        x = _as_float(x)
        return x * self._per_band(self.std, x) + self._per_band(self.mean, x)

    def normalize(self, x: Any) -> Any:
        """DN -> standardised model input: `to_reflectance` then `standardize`."""
        return self.standardize(self.to_reflectance(x))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the YAML layout)."""
        d: dict[str, Any] = {
            "name": self.name,
            "bands": list(self.bands),
            "scale": list(self.scale) if isinstance(self.scale, tuple) else self.scale,
            "offset": list(self.offset) if isinstance(self.offset, tuple) else self.offset,
            "mean": list(self.mean),
            "std": list(self.std),
            "rgb_like": self.rgb_like,
            "nodata": self.nodata,
        }
        if self.rgb_bands:
            d["rgb_bands"] = list(self.rgb_bands)
        if self.aliases:
            d["aliases"] = dict(self.aliases)
        return d


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _as_float(x: Any) -> Any:
    if _is_torch(x):
        return x if x.dtype.is_floating_point else x.float()
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def list_sensors() -> list[str]:
    """Names of the built-in sensors."""
    from geodino.data.sensor_table import SENSORS

    return sorted(SENSORS)


def get_sensor(name_or_yaml: str | Path | Sensor) -> Sensor:
    """A built-in sensor by name (case-insensitive; '-' or '_'), or a user sensor from a YAML file."""
    if isinstance(name_or_yaml, Sensor):
        return name_or_yaml
    text = str(name_or_yaml)
    if text.endswith((".yaml", ".yml")) or Path(text).expanduser().is_file():
        return load_sensor_yaml(_shipped_sensor_yaml(text))
    from geodino.data.sensor_table import _ALIASES, SENSORS

    key = text.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in SENSORS:
        return SENSORS[key]
    close = did_you_mean(key, [*SENSORS, *_ALIASES], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown sensor {text!r}{hint} (built-in: {', '.join(list_sensors())}; or pass a sensor YAML file, "
        "see `geodino data stats`)"
    )


def _shipped_sensor_yaml(text: str) -> str:
    """`text` when it is a file; else the shipped sensor YAML it names (`configs/sensors/X.yaml` from any folder,
    as the shipped configs write it), so that a config naming one runs from a pip install too."""
    if Path(text).expanduser().is_file():
        return text
    from geodino.config import find_config

    found = find_config(text)
    return str(found) if found.is_file() else text
