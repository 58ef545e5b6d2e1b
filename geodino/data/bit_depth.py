"""Bit depth: the data's DN range against the range a sensor's scale is for (uint8 data with a 16-bit sensor, or
16-bit values above 255 with an 8-bit one), checked by every reader of pixels in one line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geodino.errors import ConfigError, InputError

if TYPE_CHECKING:
    from geodino.data.sensors import Sensor

__all__ = ["check_bit_depth", "check_read_values", "scale_misfit", "scales_8bit", "scales_16bit", "warn_rgb_dn"]


def _as_tuple(v: float | tuple[float, ...]) -> tuple[float, ...]:
    return v if isinstance(v, tuple) else (float(v),)


def scales_8bit(sensor: Sensor) -> bool:
    """Whether the sensor maps 8-bit DN to reflectance (every band's scale 1/255, no offset: imagenet, maxar, ...)."""
    return all(abs(float(v) - 1 / 255) < 1e-9 for v in _as_tuple(sensor.scale)) and not any(_as_tuple(sensor.offset))


def scales_16bit(sensor: Sensor) -> bool:
    """Whether the sensor's scale is for 16-bit DN: the brightest 8-bit DN (255) maps below 0.1 in every band
    (sentinel2 1e-4: 0.026; landsat8 2.75e-5 - 0.2: -0.19), so 8-bit data through it is a near-constant image."""
    scales, offsets = _as_tuple(sensor.scale), _as_tuple(sensor.offset)
    n = max(len(scales), len(offsets))
    top = [scales[i % len(scales)] * 255 + offsets[i % len(offsets)] for i in range(n)]
    return all(0 < sc for sc in scales) and all(t < 0.1 for t in top)


def check_bit_depth(
    name: str,
    dtype: Any,
    sensor: Sensor,
    *,
    top: int | None = None,
    kind: str = "image",
    setting: str | None = None,
    error: type[Exception] = InputError,
) -> None:
    """Refuse data whose bit depth does not fit the sensor's scale, in one line: uint8 data with a sensor of 16-bit
    DN (it would train as a near-constant image), or uint16/int16 values above 255 (`top`, the largest valid value
    of pixels the caller read anyway) with a sensor of 8-bit DN (reflectance up to 257). `setting` names where the
    sensor is set (a source's `sensor:`, a command's --sensor); `error` is the 16-bit refusal's class."""
    dt = np.dtype(dtype)
    if dt == np.uint8 and scales_16bit(sensor):
        scale = _as_tuple(sensor.scale)[0]
        from geodino.data.sensors import SENSORS

        # built-in 8-bit sensors of the same band count (naip 4, sat493m 3, ...): a 6-band file was offered both
        alike = sorted(k for k, s in SENSORS.items() if s.n_bands == sensor.n_bands and scales_8bit(s))[:3]
        names = ", ".join(alike) + ", or " if alike else ""
        raise InputError(
            f"{kind} {name} is uint8 but sensor {sensor.name!r} scales 16-bit DN (scale {scale:g}); use a sensor of "
            f"8-bit DN with its {sensor.n_bands} bands (e.g. {names}a YAML from `geodino data stats` without "
            "--sensor) or pass its scale (data stats --scale 0.00392)"
        )
    if dt in (np.dtype(np.uint16), np.dtype(np.int16)) and top is not None and top > 255 and scales_8bit(sensor):
        where = setting or "the source's sensor"
        # a sensor of the imagery's DN scale is the fix (`data stats` reads 16-bit DN / 10000 without --scale)
        stats = "geodino data stats store.zarr --type cube" if kind == "datacube" else "geodino data stats scene.tif"
        raise error(
            f"{kind} {name} is 16-bit ({dt.name}, values up to {top}) but sensor {sensor.name!r} scales 8-bit DN "
            f"(1/255: reflectance up to {top / 255:.1f}); set {where} to your imagery's, written with its DN scale "
            f"(`{stats} --scale 0.0001 --out my.yaml` for reflectance x 10000, the default for 16-bit DN of files "
            "declaring no scale) or convert the files to 8 bits"
        )


def warn_rgb_dn(name: str, dtype: Any, sensor: Sensor, *, stacklevel: int = 2) -> None:
    """Warn in one line when an RGB-like sensor reads 16-bit DN as reflectance (every band's scale 1, no offset: a
    `data stats` YAML written before it read uint16/int16 by the dtype rule, or one made with `--scale 1`): its
    mean/std standardise the DN consistently, but pretraining's RGB colour jitter clamps to 0..1 and curate's cloud
    rules threshold reflectance, so every crop came out one flat colour without a word. Not an error: DN in a
    consistent unit are otherwise read right."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint16), np.dtype(np.int16)) or not getattr(sensor, "rgb_like", False):
        return
    if any(float(v) != 1 for v in _as_tuple(sensor.scale)) or any(_as_tuple(sensor.offset)):
        return
    import warnings

    warnings.warn(
        f"sensor {sensor.name!r} reads the {dt.name} DN of {name} as reflectance (scale 1, offset 0, rgb_like): "
        "pretraining's RGB colour jitter and curate's cloud rules take reflectance in 0..1 and would see these "
        f"pixels clamped flat; write its YAML again with `geodino data stats {name} --out my.yaml` (16-bit DN / "
        "10000 by default) or with --scale and your product's factor",
        UserWarning,
        stacklevel=stacklevel,
    )


def check_read_values(
    name: str,
    data: np.ndarray,
    valid: np.ndarray,
    sensor: Sensor | None,
    *,
    dtype: Any = None,
    kind: str = "raster",
    setting: str | None = None,
) -> None:
    """Refuse uint16/int16 values above 255 in pixels a reader just read when `sensor` scales 8-bit DN
    (`check_bit_depth`; the dtype alone cannot tell, 8-bit values stored as 16 bits are fine): the one place every
    reader of pixels calls (raster archives and their grid pre-scan, datacubes, embed's windows). `data` is
    [C,h,w] (or [T,C,h,w]) in file units, `valid` [h,w] (or [T,h,w]) the pixels that count; `dtype` is the file's
    when the reader cast `data` on the way (embed reads windows as float32). Costs a max over the window only for
    16-bit data with an 8-bit sensor. A ConfigError: the sensor setting is wrong, not the file, so
    `on_error: skip` must not skip it as a failed read."""
    dt = np.dtype(data.dtype if dtype is None else dtype)
    if sensor is None or dt not in (np.dtype(np.uint16), np.dtype(np.int16)) or not scales_8bit(sensor):
        return
    if valid.shape == data.shape[1:]:
        pix = data[:, valid]
    elif data.ndim == 4 and valid.shape == (data.shape[0], *data.shape[2:]):  # times, bands, rows, columns
        pix = np.moveaxis(data, 1, 0)[:, valid]
    else:
        pix = data
    if pix.size:
        check_bit_depth(name, dt, sensor, top=int(pix.max()), kind=kind, setting=setting, error=ConfigError)


def scale_misfit(dtype: Any, n_bands: int, scale: Any, offset: Any, top: float | None = None) -> str:
    """Why a recorded DN scale (`x * scale + offset`, one value or one per band) does not fit data of `dtype` with
    `n_bands` bands ("" when it does): another band count; float data (read as reflectance: a DN scale would
    shrink it again); int8 data (codes, not DN: `geodino.data.dtype_rule`, as `geodino embed` decides); uint8 data
    with a scale for 16-bit DN; 16-bit values above 255 (`top`, the data's largest value) with a scale for 8-bit
    DN. The one rule of the probes' image files and `FrozenBackbone.preprocess`."""
    scale = np.atleast_1d(np.asarray(scale, dtype=np.float64)).ravel()
    offset = np.atleast_1d(np.asarray(offset, dtype=np.float64)).ravel()
    dt = np.dtype(dtype)
    if scale.size not in (1, n_bands) or offset.size not in (1, n_bands):
        n = max(scale.size, offset.size)
        return f"it has {n} value{'s' if n != 1 else ''} for {n_bands} band{'s' if n_bands != 1 else ''}"
    if dt.kind == "f":
        return f"the data is {dt.name}, read as reflectance"
    if dt == np.int8:
        return "the data is int8, codes rather than DN of a sensor"
    if dt == np.uint8 and np.all(scale > 0) and np.all(scale * 255 + offset < 0.1):
        return "the data is uint8 and it scales 16-bit DN"
    eight_bit = np.allclose(scale, 1 / 255, rtol=0, atol=1e-9) and not np.any(offset)
    if dt in (np.dtype(np.uint16), np.dtype(np.int16)) and eight_bit and top is not None and top > 255:
        return f"the data is {dt.name} with values above 255 and it scales 8-bit DN"
    return ""
