"""The input normalisation an exported backbone was trained with, as a plain record that every export carries.

A record is a JSON-able dict::

    {"sensor": "demo4", "bands": ["blue", "green", "red", "nir"], "scale": 0.0001, "offset": 0.0,
     "mean": [...], "std": [...], "origin": "pretraining data (sensor demo4)"}

`scale`/`offset` turn the data's DN into reflectance (`x * scale + offset`), `mean`/`std` then standardise it
(per band, in reflectance units): the same arithmetic as `geodino.data.sensors.Sensor.normalize`. Exports
store it in the `.heads.pth` sidecar (`"normalization"`), the `.safetensors` metadata (`geodino_normalization`),
an HF folder's `preprocessor_config.json` and a timm file's `pretrained_cfg`; `read_backbone_weights` returns it
and `geodino.backbones.load_backbone` uses it unless a sensor is passed.

This module is plain Python (no torch, no data/ imports at import time) so every checkpoint reader and writer can
use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from geodino.errors import CheckpointError, plural

__all__ = [
    "NORMALIZATION_KEY",
    "band_resolver",
    "check_normalization",
    "describe_normalization",
    "dn_scale_of",
    "folded_mean_std",
    "from_json",
    "from_mean_std",
    "from_run_config",
    "normalization_of_training",
    "select_normalization",
    "to_json",
]

NORMALIZATION_KEY = "geodino_normalization"  # safetensors metadata key / extra key in HF and timm configs
PROCESSOR_ORIGIN = "preprocessor_config.json"  # the origin of a record read from a foreign HF image processor


def _floats(value: Any, n: int, key: str, where: str) -> float | list[float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        vals = [float(v) for v in value]
        if len(vals) not in (1, n):
            raise CheckpointError(
                f"{where}: normalisation '{key}' has {plural(len(vals), 'value')} for {plural(n, 'band')}"
            )
        return vals[0] if len(vals) == 1 else vals
    raise CheckpointError(f"{where}: normalisation '{key}' is {value!r}, not a number or a list of numbers")


def check_normalization(record: Any, where: str = "<record>") -> dict[str, Any] | None:
    """A validated copy of a normalisation record (None for None or an empty dict); one line on bad content."""
    if record is None or (isinstance(record, Mapping) and not record):
        return None
    if not isinstance(record, Mapping):
        raise CheckpointError(f"{where}: normalisation record is a {type(record).__name__}, not a dict")
    try:
        mean = [float(v) for v in record["mean"]]
        std = [float(v) for v in record["std"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: normalisation record lacks a numeric mean/std list ({exc})") from None
    n = len(mean)
    if n == 0 or len(std) != n:
        raise CheckpointError(
            f"{where}: normalisation has {plural(n, 'mean')} and {plural(len(std), 'std')}; they must match"
        )
    if any(s <= 0 for s in std):
        raise CheckpointError(f"{where}: normalisation std {std} has a value <= 0")
    bands = record.get("bands")
    if bands is not None:
        bands = [str(b) for b in bands]
        if len(bands) != n:
            raise CheckpointError(
                f"{where}: normalisation names {plural(len(bands), 'band')} but has {plural(n, 'mean')}"
            )
    return {
        "sensor": str(record.get("sensor") or ""),
        "bands": bands,
        "scale": _floats(record.get("scale", 1.0), n, "scale", where),
        "offset": _floats(record.get("offset", 0.0), n, "offset", where),
        "mean": mean,
        "std": std,
        "origin": str(record.get("origin") or ""),
    }


def from_mean_std(
    mean: Sequence[float], std: Sequence[float], *, bands: Sequence[str] | None = None, origin: str = ""
) -> dict[str, Any]:
    """A record from bare mean/std (e.g. a timm `pretrained_cfg`), with no DN scale."""
    rec = check_normalization({"mean": list(mean), "std": list(std), "bands": bands, "origin": origin})
    assert rec is not None
    return rec


def from_run_config(config: Any, purpose: str = "pretraining") -> tuple[dict[str, Any] | None, str]:
    """(record, '') of the normalisation a training checkpoint's saved run `config` standardises its `data` with
    (`geodino.data.normalization.data_normalization`, `purpose` naming the data in the record's origin), or (None,
    why not): for checkpoints that saved no record of their own (pretraining's and distillation's alike).
    geodino.data is imported on call: the data part is optional for pure-model use."""
    data = config.get("data") if isinstance(config, Mapping) else None
    if not data:
        return None, "the checkpoint holds no data config"
    try:
        from geodino.data.normalization import data_normalization
    except ImportError:
        return None, "geodino.data is not available"
    return data_normalization(data, purpose)


def normalization_of_training(geo: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(record, why not) of a training checkpoint's `geodino` entry: its recorded `normalization`, else the one
    its data config standardises with (`geodino.data.normalization.data_normalization`)."""
    if geo.get("normalization"):
        return check_normalization(geo["normalization"], "training checkpoint"), ""
    return from_run_config(geo.get("config"))


def to_json(record: Mapping[str, Any] | None) -> str:
    """The record as compact JSON (for safetensors metadata, whose values are strings)."""
    return json.dumps(dict(record or {}), separators=(",", ":"))


def from_json(text: str | None, where: str = "<metadata>") -> dict[str, Any] | None:
    """The record stored by `to_json` (None when absent or empty)."""
    if not text:
        return None
    try:
        return check_normalization(json.loads(text), where)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{where}: normalisation metadata is not valid JSON ({exc})") from None


def folded_mean_std(record: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(mean, std) in DN units: `(x * scale + offset - mean) / std == (x - mean') / std'`, for tools that take
    raw DN and apply one mean/std (HF image processors with per-band scales, timm `pretrained_cfg`)."""
    n = len(record["mean"])

    def per_band(v: Any) -> list[float]:
        return [float(v)] * n if isinstance(v, int | float) else [float(x) for x in v]

    scale, offset = per_band(record.get("scale", 1.0)), per_band(record.get("offset", 0.0))
    mean = [(m - o) / s for m, o, s in zip(record["mean"], offset, scale, strict=True)]
    std = [sd / s for sd, s in zip(record["std"], scale, strict=True)]
    return mean, std


def describe_normalization(record: Mapping[str, Any], read_from: str = "") -> str:
    """One short phrase: sensor, bands and where the record came from. `read_from`: the place the caller names
    beside it (`BackboneWeights.normalization_from`); the part of the origin it already names is left out (a
    foreign HF folder's "preprocessor_config.json", a timm file's "timm pretrained_cfg"), and an origin naming
    the record's own sensor ("sensor naip (convert --sensor)", an export's "pretraining data (sensor naip)") says
    only how (`geodino info` named it twice)."""
    sensor = record.get("sensor") or "unnamed sensor"
    bands = record.get("bands")
    what = f"{sensor} ({', '.join(bands)})" if bands else f"{sensor} ({len(record['mean'])} bands)"
    origin = str(record.get("origin") or "")
    head, _, rest = origin.partition(" (")
    if read_from and head and head.removeprefix("timm ") in read_from:
        origin = rest.removesuffix(")")
    elif rest and head == f"sensor {sensor}":  # "sensor naip (convert --sensor)": the sensor is named above
        origin = rest.removesuffix(")")
    origin = origin.removesuffix(f" (sensor {sensor})")  # an export's "pretraining data (sensor naip)"
    return what + (f", {origin}" if origin else "")


def select_normalization(
    record: Mapping[str, Any] | None, bands: Sequence[str], resolve: Callable[[str], str | None] | None = None
) -> dict[str, Any] | None:
    """The record restricted to `bands` (in that order, names matched case-insensitively; `resolve` maps a name to
    the record's own band name, e.g. through the recorded sensor's aliases: red -> SR_B4), or None when the record
    names no bands or lacks one of them (a band-adapted backbone then needs its sensor passed)."""
    if not record or not record.get("bands"):
        return None
    index = {str(b).lower(): i for i, b in enumerate(record["bands"])}
    # the record's bands under the sensor's own names too: a record naming blue, nir ... and a query naming B02,
    # B08 (or the reverse) meet there, as the patch-embedding adaptation matches them
    from geodino.models.checkpoints.bands import rgb_canonical

    canon = resolve if resolve is not None else (lambda _b: None)
    resolved = {str(c).lower(): i for i, c in enumerate(canon(str(b)) for b in record["bands"]) if c is not None}
    rgb = {rgb_canonical(str(b)): i for i, b in enumerate(record["bands"])}  # red = R = RED, as the kernels match

    def find(b: str) -> int:
        if str(b).lower() in index:
            return index[str(b).lower()]
        own = canon(str(b))
        if own is not None and str(own).lower() in index:
            return index[str(own).lower()]
        if own is not None and str(own).lower() in resolved:
            return resolved[str(own).lower()]
        return rgb[rgb_canonical(str(b))]  # KeyError when unresolved

    idx: list[int] | None
    try:
        idx = [find(b) for b in bands]
    except KeyError:
        idx = _matched_as_the_kernels(record, bands)
        if idx is None:
            return None

    def pick(v: Any) -> Any:
        return [v[i] for i in idx] if isinstance(v, list) else v

    out = dict(record)
    out.update({k: pick(record[k]) for k in ("scale", "offset", "mean", "std")})
    out["bands"] = [record["bands"][i] for i in idx]
    return out


def _matched_as_the_kernels(record: Mapping[str, Any], bands: Sequence[str]) -> list[int] | None:
    """The record's band index for each of `bands` as the patch-embedding adaptation matches them (through the
    built-in sensors that know the names, e.g. red = B04 for a record of a custom Sentinel-2 sensor), or None."""
    from geodino.errors import GeoDinoError

    try:
        from geodino.models.checkpoints.bands import band_matches

        m = band_matches(record["bands"], [str(b) for b in bands], src_sensor=record.get("sensor") or None)
    except (ImportError, GeoDinoError):
        return None
    return [m[j] for j in range(len(bands))] if len(m) == len(bands) else None


def band_resolver(record: Mapping[str, Any] | None) -> Callable[[str], str | None] | None:
    """A name -> the record's band name function through the built-in sensor the record names (its aliases: red,
    nir, B4 ... -> SR_B4), or None when it names none (or the sensor registry is not available)."""
    name = (record or {}).get("sensor")
    if not name:
        return None
    try:
        from geodino.data.sensors import SENSORS
    except ImportError:  # pure-model use without the data part
        return None
    sensor = SENSORS.get(str(name).lower())
    if sensor is None:
        return None
    return lambda b: sensor.resolve_band(b, strict=False)


def dn_scale_of(record: Mapping[str, Any] | None) -> tuple[list[float], list[float]] | None:
    """(scale, offset) per band (one value each when the record has one) of the DN -> reflectance step a record
    carries, or None: a record carries one when it names its sensor or has a scale/offset other than 1/0; a bare
    mean/std (e.g. a foreign timm `pretrained_cfg`) says nothing about the data's units. A foreign HF processor's
    record (origin `PROCESSOR_ORIGIN`) always carries one: its rescale is what transformers applies, so a factor 1
    (or do_rescale false) means DN as given, not the dtype rule (uint16 / 10000 gave other inputs than the HF user's
    pipeline). The one rule of `geodino embed`, the probes and `FrozenBackbone.preprocess`."""
    if not record or "scale" not in record:
        return None
    scale = [float(v) for v in (record["scale"] if isinstance(record["scale"], Sequence) else [record["scale"]])]
    raw = record.get("offset", 0.0)
    offset = [float(v) for v in (raw if isinstance(raw, Sequence) else [raw])]
    processor = str(record.get("origin") or "").startswith(PROCESSOR_ORIGIN)
    if not record.get("sensor") and not processor and all(v == 1 for v in scale) and all(v == 0 for v in offset):
        return None
    return scale, offset
