"""How `geodino embed` turns a raster's values into the reflectance a backbone reads (DN -> reflectance).

One rule, in order: a per-band rule (`band_scale`/`band_offset`, a STAC item's raster:bands, the raster's own GDAL
scale/offset), `--sensor`, `--scale`, the DN scale the backbone's export records, then the dtype rule
(`geodino.data.dtype_rule`: uint8 / 255, 16-bit / 10000, floats as given, other types refused). `prepare`
describes it, the sweep applies it, and the probes and `viz attention` read rasters by the same rule; kept apart
from the sweep (`sweep.py` re-exports these names) because it is a decision about units, not about reading,
inferring or writing blocks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geodino.embed.config import DECLARED_BY_FILE, EmbedConfig
from geodino.embed.scale_rule import ScaleRule
from geodino.errors import InputError, plural
from geodino.models.caller import user_stacklevel

BAND_KEYS = "band_scale/band_offset"  # a per-band rule the user or a STAC item gives

__all__ = [
    "InputScale",
    "as_float32_on",
    "input_scaler",
    "record_units_reason",
    "recorded_scale",
    "refuse_without_rule",
    "scaling_sensor",
    "warn_dn_as_reflectance",
    "warn_record_units",
]


def as_float32_on(x: Any, device: Any, non_blocking: bool = False) -> Any:
    """A host tensor of raw values as float32 on `device`, copied in its own dtype (a uint8 batch is a quarter of
    float32's bytes): uint16/uint32 as the signed integer of their width, widened and masked back there; uint64
    (rare) converted on the host, and float64 too for Apple MPS, which has no float64 (the copy itself raised). On
    CUDA float64 still crosses as it is: a pinned batch copies asynchronously and the GPU's cast is cheap, where
    the host's would hold up the thread that feeds it. The same values numpy's `astype(float32)` gives."""
    import torch

    # unsigned integers torch supports only in part (copies and views; not every conversion kernel on every device)
    unsigned = {torch.uint16: (torch.int16, torch.int32, 0xFFFF), torch.uint32: (torch.int32, torch.int64, 2**32 - 1)}
    if x.dtype == torch.uint64 or (x.dtype == torch.float64 and torch.device(device).type == "mps"):
        return x.float().to(device, non_blocking=non_blocking)
    if x.dtype in unsigned:
        signed, wide, mask = unsigned[x.dtype]
        y = x.view(signed).to(device, non_blocking=non_blocking)
        return y.to(wide).bitwise_and_(mask).float()
    return x.to(device, non_blocking=non_blocking).float()


@dataclass(frozen=True)
class InputScale:
    """DN -> reflectance as `x * scale (+ offset)` in float32, `scale`/`offset` one value or one per band ([C,1,1]).

    Every rule `input_scaler` knows is this affine step, so the sweep applies it on the device the raw batch was
    copied to (`apply_`: a uint8 batch crosses to a GPU in a quarter of the bytes), as the same float32 product and
    sum numpy's `x * scale + offset` rounds: the same bits."""

    scale: np.ndarray | np.floating | None = None  # None: identity (float input read as reflectance)
    offset: np.ndarray | np.floating | None = None  # None: no offset added
    # (scale, offset) as tensors on each device used: copied there once per run, not once per batch (a blocking
    # host-to-GPU copy of each on every batch held up the sweep's thread)
    _on: dict[Any, tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def apply_(self, x: Any) -> Any:
        """The step on a float32 torch tensor [B,C,H,W], in place (the sweep's own copy of a batch)."""
        scale, offset = self.on(x.device)
        if scale is not None:
            x.mul_(scale)
        if offset is not None:
            x.add_(offset)
        return x

    def on(self, device: Any) -> tuple[Any, Any]:
        """(scale, offset) as float32 tensors on `device` (None where the step has none), made on the first call."""
        import torch

        if device not in self._on:
            self._on[device] = tuple(  # type: ignore[assignment]
                None if v is None else torch.from_numpy(np.ascontiguousarray(v)).to(device)
                for v in (self.scale, self.offset)
            )
        return self._on[device]


def recorded_scale(bb: Any) -> tuple[np.ndarray, np.ndarray, ScaleRule] | None:
    """(scale, offset, rule) of the DN -> reflectance step the backbone's export records, or None.

    A record carries a DN scale when it names its sensor or has a scale/offset other than 1/0; a bare mean/std
    (e.g. a foreign timm `pretrained_cfg`) says nothing about the data's units, so the dtype default applies."""
    from geodino.models.checkpoints.normalization import dn_scale_of

    rec: Any = getattr(bb, "normalization", None)  # a dict when `found`
    found = dn_scale_of(rec)
    if found is None:
        return None
    scale, offset = (np.asarray(v, dtype=np.float32) for v in found)
    source = str(getattr(bb, "norm_source", "") or "")
    named = rec.get("sensor") and not source.startswith(f"sensor {rec['sensor']}")  # a passed sensor says it once

    def fmt(v: np.ndarray) -> str:
        return f"{float(v[0]):g}" if v.size == 1 else "[" + ",".join(f"{float(x):g}" for x in v) + "]"

    text = f"x*{fmt(scale)}" + (f"+{fmt(offset)}" if np.any(offset != 0) else "")
    return scale, offset, ScaleRule.of_record(text, rec["sensor"] if named else "", source)


def input_scaler(
    info: Any,
    cfg: EmbedConfig,
    bb: Any = None,
    input_count: int | None = None,
    declared: tuple[Sequence[float], Sequence[float]] | None = None,
    declared_by: str = DECLARED_BY_FILE,
) -> tuple[InputScale, ScaleRule]:
    """DN -> reflectance for the input (an `InputScale`), and the rule as a value (`ScaleRule`: its `stored()`
    text is the metadata's `input_scale`, its `said()` the console's line). In order: `--sensor`
    (the data's sensor), `--scale`, the DN scale/offset the backbone's export records (for integer input: float
    input is read as reflectance, as the probes and `FrozenBackbone.preprocess` read it; not int8), then the dtype
    rule (`geodino.data.dtype_rule`, which refuses types without a default: `refuse_without_rule`).
    `input_count`: the bands of the input before `--bands` selects some (info.count is the selection). Ahead of
    them all, `band_scale`/`band_offset` (set per scene from a STAC item's raster:bands, or by the user), then
    `declared`: the (scales, offsets) the raster declares for the bands read (`geodino.embed.prepare.file_rule`,
    None unless it applies: `file_scale` on, no rule given), described as "x*0.0001-0.1 (the input's GDAL
    scale/offset)" (`declared_by`: a datacube's CF scale_factor/add_offset, `geodino.embed.prepare.cube_rule`, say
    so); like a STAC item's rule, it goes ahead of `--sensor`."""
    if cfg.band_scale is not None or cfg.band_offset is not None:
        return _band_rule(info, cfg.band_scale, cfg.band_offset, BAND_KEYS)
    if declared is not None:
        return _band_rule(info, list(declared[0]), list(declared[1]), declared_by)
    if cfg.sensor:
        sensor = _selected_sensor(cfg, input_count, info.descriptions)
        if sensor.n_bands != info.count:
            picked = f"--bands {','.join(map(str, cfg.bands))} selects {info.count} of" if cfg.bands else "has"
            raise InputError(
                f"sensor {sensor.name!r} has {plural(sensor.n_bands, 'band')} but input {info.path} {picked} "
                f"{input_count or info.count}; pick matching bands with --bands or another --sensor (bands=[...] or "
                "sensor=NAME in Python)"
            )
        return _sensor_scale(sensor), ScaleRule(f"sensor:{sensor.name}", "passed")
    if cfg.scale is not None:
        s = float(cfg.scale)
        return InputScale(np.float32(s)), ScaleRule(f"x*{s}", "passed")
    dt = np.dtype(info.dtype)
    # float input is reflectance; int8 holds codes, which the backbone's DN step (made for its sensor's DN) fits
    # no better than a dtype default: both go to the dtype rule, which refuses int8 without a rule
    rec = recorded_scale(bb) if dt.kind != "f" and dt != np.int8 else None
    if rec is not None:
        scale, offset, rule = rec
        if scale.size not in (1, info.count) or offset.size not in (1, info.count):
            raise InputError(
                f"backbone {getattr(bb, 'spec', '')} records a DN scale for "
                f"{plural(max(scale.size, offset.size), 'band')} but "
                f"input {info.path} has {info.count}; pass --scale FACTOR or --sensor NAME (scale= or sensor= in "
                "Python)"
            )
        if scale.size > 1 or offset.size > 1:  # per band: broadcast over [C, H, W]
            scale, offset = scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)
        if np.all(offset == 0):
            return InputScale(scale), rule
        return InputScale(scale, offset), rule
    divisor = refuse_without_rule(info)
    if dt == np.uint8:
        return InputScale(np.float32(1 / divisor)), ScaleRule.by_dtype(dt)
    if dt.kind in "iu":
        warnings.warn(
            f"input {info.path} is {dt.name}: assuming reflectance = DN / 10000 (Sentinel-2/Landsat L2 convention); "
            f"pass --sensor NAME or --scale FACTOR (sensor=NAME or scale=FACTOR in Python) if that is wrong",
            stacklevel=3,
        )
        return InputScale(np.float32(1 / divisor)), ScaleRule.by_dtype(dt)
    return InputScale(), ScaleRule.by_dtype(dt)


def refuse_without_rule(info: Any) -> float:
    """The dtype rule's divisor for `info`'s input (`geodino.data.dtype_rule`), or its one-line refusal naming the
    file and `geodino embed`'s ways to give a rule: input of a type without a default (int8, 32/64-bit integers)
    that neither the user (--scale, --sensor, band_scale) nor the file (its scale/offset, a STAC item's
    raster:bands) nor, except for int8, the backbone's recorded DN scale gives a rule."""
    from geodino.data.dtype_rule import dtype_divisor

    return dtype_divisor(
        info.dtype,
        f"input {info.path}",
        "if it is imagery, pass --scale FACTOR (--scale 1 reads the values as they are) or --sensor NAME (scale=, "
        "sensor= or band_scale= in Python)",
    )


def warn_dn_as_reflectance(info: Any, sensor: Any, bb: Any) -> None:
    """A sensor that reads 16-bit DN as they are (scale 1, offset 0: what `data stats` wrote for uint16/int16
    without `--scale` before it applied the dtype rule, and writes with `--scale 1`) before a backbone whose
    recorded mean/std are reflectance (every |mean| <= 2) hands it values ~1000x its training range; the features
    came out unrelated to the right ones without a word."""
    dt = np.dtype(info.dtype)
    rec, mean = getattr(bb, "normalization", None), getattr(bb, "mean", None)
    if dt.kind not in "iu" or dt.itemsize < 2 or not rec or mean is None:
        return
    if np.any(np.asarray(sensor.scale, float) != 1) or np.any(np.asarray(sensor.offset, float) != 0):
        return
    if float(np.abs(np.asarray(mean.detach().cpu() if hasattr(mean, "detach") else mean, float)).max()) > 2:
        return  # a backbone normalised in DN units (pretrained on such a sensor): consistent
    warnings.warn(
        f"sensor {sensor.name!r} reads the {dt.name} DN of {info.path} as reflectance (scale 1, offset 0), but "
        f"backbone {getattr(bb, 'spec', '')} normalises reflectance (mean {float(mean.flatten()[0]):.3g} ...): its "
        "features will be far off; write the sensor with the DN scale (geodino data stats ... --scale 0.0001) or "
        "pass --scale FACTOR instead of --sensor",
        stacklevel=4,
    )


def record_units_reason(dtype: Any, path: Any, bb: Any) -> str | None:
    """Why the DN step the backbone records (`recorded_scale`: it applies to integer input without --sensor/--scale)
    and its mean/std are in different units for `dtype` data at `path` (any text naming the input), or None when
    they agree: a foreign HF processor that does not rescale (x*1) with statistics in reflectance units (every
    |mean| <= 2, e.g. ImageNet's) hands uint8/uint16 DN to a backbone normalised for 0..1; the reverse, a scale
    whose output cannot reach the recorded means (x/255 with DN-unit means), standardises reflectance by DN
    statistics. Both gave features far off without a word. The one rule of `geodino embed`, the probes'
    `InputScaling` and `viz attention`'s input; each adds the advice naming its own keys."""
    from geodino.backbones.frozen import FLOAT_REFLECTANCE_MAX

    dt = np.dtype(dtype)
    rec, found = getattr(bb, "normalization", None), recorded_scale(bb)
    if dt.kind not in "iu" or found is None or not rec or not rec.get("mean"):
        return None
    scale, offset, rule = found
    desc = rule.stored()  # the warnings name the record as the metadata does
    mean = np.abs(np.asarray(rec["mean"], dtype=np.float64))
    lo, hi = (float(v) for v in (np.iinfo(dt).min, np.iinfo(dt).max))
    reach = np.maximum(np.abs(scale * lo + offset), np.abs(scale * hi + offset)).astype(np.float64)
    if np.all(scale == 1) and np.all(offset == 0) and mean.max() <= FLOAT_REFLECTANCE_MAX:
        why = f"reads the {dt.name} DN of {path} as given, {desc}, but its mean/std are in reflectance units"
    elif np.any(scale != 1) and np.any(mean > reach.max()):
        why = f"scales the {dt.name} DN of {path} by {desc} to at most {reach.max():g}, but its means are larger"
    else:
        return None
    return (
        f"backbone {getattr(bb, 'spec', '')} {why} (mean {float(rec['mean'][0]):.4g} ...): its features will be far off"
    )


def warn_record_units(info: Any, bb: Any) -> None:
    """One line when the DN step the backbone records and its mean/std are in different units
    (`record_units_reason`), with `geodino embed`'s way out (--scale / --sensor)."""
    why = record_units_reason(info.dtype, info.path, bb)
    if why is None:
        return
    warnings.warn(
        f"{why}; pass --scale FACTOR (the DN -> reflectance factor of the data, e.g. 0.0001) or --sensor NAME "
        "(scale= or sensor= in Python)",
        stacklevel=user_stacklevel(),
    )


def _sensor_scale(sensor: Any) -> InputScale:
    """A sensor's `to_reflectance` as an `InputScale` (float32 scale, offset when it has one, per band or one)."""

    def values(v: float | tuple[float, ...]) -> np.ndarray:
        arr = np.asarray(v, dtype=np.float32)
        return arr.reshape(-1, 1, 1) if arr.ndim else arr

    has_offset = sensor.offset != 0.0 and sensor.offset != ()
    return InputScale(values(sensor.scale), values(sensor.offset) if has_offset else None)


def _band_rule(
    info: Any, band_scale: list[float] | None, band_offset: list[float] | None, source: str
) -> tuple[InputScale, ScaleRule]:
    """x * band_scale + band_offset, one value or one per band read; described as "x*0.0001-0.1 (band_scale/
    band_offset)", `source` in the brackets (one number when every band has the same)."""
    scale = np.asarray(band_scale if band_scale is not None else [1.0], dtype=np.float32)
    offset = np.asarray(band_offset if band_offset is not None else [0.0], dtype=np.float32)
    if scale.size not in (1, info.count) or offset.size not in (1, info.count):
        raise InputError(
            f"band_scale/band_offset give {scale.size}/{offset.size} values but input {info.path} has "
            f"{plural(info.count, 'band')} read; give one value, or one per band"
        )

    def fmt(v: np.ndarray) -> str:
        same = bool(np.all(v == v[0]))
        return f"{float(v[0]):g}" if same else "[" + ",".join(f"{float(x):g}" for x in v) + "]"

    off = fmt(offset)
    text = f"x*{fmt(scale)}" + ("" if not np.any(offset) else off if off.startswith("-") else f"+{off}")
    rule = ScaleRule(text, "band" if source == BAND_KEYS else "declared", source=source)
    return InputScale(scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)), rule


def _selected_sensor(cfg: EmbedConfig, input_count: int | None, names: Sequence[str | None] = ()) -> Any:
    """`--sensor` as the selected bands see it: a sensor of every input band is restricted to the `--bands` picked
    (in their order, with their own scale, offset, mean and std); bands read whose `names` (descriptions, a cube's
    per-band variables) each name another of the sensor's bands select those, as the training readers select
    them (B02,B03,B04,B08 of sentinel2_l2a); any other sensor is returned as given."""
    from geodino.data.sensors import get_sensor

    assert cfg.sensor, "the callers select a sensor only with --sensor set"
    sensor = get_sensor(cfg.sensor)
    if cfg.bands and input_count == sensor.n_bands and all(1 <= b <= sensor.n_bands for b in cfg.bands):
        return sensor.select([sensor.bands[b - 1] for b in cfg.bands])
    import re

    # b1..bN (a cube without band names) are positions: by name b1 was the sensor's B01, so a 4-band store under a
    # 12-band sensor was read as B01..B04 (a raster without descriptions is refused below, as it should be)
    positional = [n for n in names if n and re.fullmatch(r"b\d+", str(n)) and str(n) not in sensor.bands]
    canon = [sensor.resolve_band(str(n), strict=False) if n and not positional else None for n in names]
    if canon and len(canon) != sensor.n_bands and all(canon) and len(set(canon)) == len(canon):
        return sensor.select([str(c) for c in canon])
    return sensor


def scaling_sensor(
    cfg: EmbedConfig, bb: Any = None, input_count: int | None = None, names: Sequence[str | None] = ()
) -> Any:
    """The sensor whose DN scale `input_scaler` applies (a `geodino.data.sensors.Sensor`), for the bit-depth check
    of the pixels the sweep reads: `--sensor`, else the sensor of the DN scale the backbone's export records;
    None with `--scale` (the user's own factor) or the dtype default (x/255 for uint8, x/10000 for 16 bits)."""
    from geodino.data.sensors import Sensor

    if cfg.sensor:
        return _selected_sensor(cfg, input_count, names)
    if cfg.scale is not None or recorded_scale(bb) is None:
        return None
    rec = bb.normalization
    n = len(rec["mean"])
    return Sensor(
        name=rec.get("sensor") or "recorded by the backbone",
        bands=tuple(rec.get("bands") or (f"b{i}" for i in range(1, n + 1))),
        scale=rec["scale"],
        offset=rec.get("offset", 0.0),
        mean=rec["mean"],
        std=rec["std"],
        rgb_like=False,
    )
