"""The cloud screen of curation: a per-pixel cloud test chosen from the sensor's bands, and a tile's cloud share.

Rules (`--cloud-rule auto` picks the first the sensor's bands allow; values are reflectance after the sensor's
scale and offset):

- **qa**: a quality band says so (by name, any case, a SAFE resolution tag such as `SCL_20m` or `QA60_60m`
  allowed). `SCL` (Sentinel-2 L2A scene classification): classes 8, 9 (cloud medium/high
  probability) and 10 (thin cirrus); `QA60` (Sentinel-2 L1C): bit 10 (opaque) or 11 (cirrus); `QA_PIXEL`
  (Landsat Collection 2): bit 1 (dilated cloud), 2 (cirrus) or 3 (cloud). The raw value is recovered by undoing
  the sensor's scale for that band. With a screening-only QA band (`--qa-band NAME`, `qaband.py`) the rule reads
  that band's raw values, read apart from the image, instead of a model input band; `auto` then picks `qa`.
  Cloud shadow is not cloud by default; `--qa-shadow` (`qa_shadow`) counts it too: SCL class 3 (cloud shadows;
  not class 2, dark area / topographic shadow) and QA_PIXEL bit 4 (cloud shadow). QA60 has no shadow flag, so
  `--qa-shadow` is refused there, as it is for the spectral rules. Snow (SCL 11, QA_PIXEL bit 5) is ground, never
  counted.
- **swir**: the potential-cloud-pixel test of Fmask (Zhu & Woodcock 2012, without the thermal band): SWIR-2
  (SWIR-1 when there is no SWIR-2) > 0.03, NDSI < 0.8 (not snow), NDVI < 0.8, whiteness < 0.7, the haze-optimised
  transform blue − 0.5·red − 0.08 > 0, and NIR/SWIR-1 > 0.75 (bright soil and roofs reflect more SWIR than NIR);
  or, where the sensor has a cirrus band (Sentinel-2 B10, Landsat band 9), cirrus >= 0.03.
- **rgb**: for plain RGB, where bright roofs, sand and concrete are as bright as clouds: every RGB band >=
  `threshold` (default 0.5), whiteness (Σ|b − mean| / mean over R, G, B, as in Fmask) < 0.2, and a smooth
  neighbourhood (std of the RGB mean over 5×5 px < 0.03). Thick clouds are bright, grey-white and featureless;
  built-up areas are bright but textured (edges, shadows, roof ridges), which keeps them.
- **bright**: the earlier brightness-only screen (every RGB band >= `threshold`); also used for 1-2 band sensors.
- **off**: no cloud screen.

A tile is dropped when its share of cloud-like valid pixels exceeds `max_cloud`. Measured on EuroSAT RGB
(docs/inspect_and_curate.md): the rgb rule keeps every Industrial and Residential chip that `bright` dropped and
still drops generated overcast tiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geodino.errors import ConfigError

__all__ = [
    "CLOUD_RULES",
    "SHADOW_KINDS",
    "CloudRule",
    "cloud_fraction",
    "cloud_rule",
    "empty_qa60",
    "rgb_index",
    "swir_on_bytes",
]

CLOUD_RULES = ("auto", "qa", "swir", "rgb", "bright", "off")
WHITENESS_SWIR = 0.7  # Fmask's whiteness limit, with the SWIR tests to separate bright surfaces
WHITENESS_RGB = 0.2  # stricter without SWIR: cloud tops are grey-white (EuroSAT roofs measured up to ~0.3)
TEXTURE_RGB = 0.03  # std of the RGB mean over TEXTURE_WINDOW px
TEXTURE_WINDOW = 5
CIRRUS = 0.03
_QA_NAMES = ("scl", "qa60", "qa_pixel")


def cloud_fraction(image: np.ndarray, valid: np.ndarray, rgb: Sequence[int], threshold: float) -> float:
    """Share of valid pixels where every RGB band has reflectance >= `threshold` (the `bright` rule)."""
    bright = np.all(image[list(rgb)] >= threshold, axis=0) & valid
    return float(bright.sum() / max(int(valid.sum()), 1))


def rgb_index(sensor: Any, n_bands: int) -> list[int]:
    """Indices of the sensor's RGB bands (its `rgb_bands`, else the first three; one band thrice)."""
    if sensor is not None and sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands):
        return [list(sensor.bands).index(b) for b in sensor.rgb_bands]
    return [0, 1, 2] if n_bands >= 3 else [0] * 3


def _role(sensor: Any, name: str) -> int | None:
    """Index of a band by its common name (blue, nir, swir16, ...; sensors alias them), or None."""
    canon = sensor.resolve_band(name, strict=False)
    return list(sensor.bands).index(canon) if canon in sensor.bands else None


def _whiteness(vis: np.ndarray) -> np.ndarray:
    m = vis.mean(0)
    return np.abs(vis - m).sum(0) / np.maximum(m, 1e-6)


@dataclass
class CloudRule:
    """One source's cloud test: `kind` and the band indices it reads (picklable for reader processes)."""

    kind: str
    bands: dict[str, int] = field(default_factory=dict)
    threshold: float = 0.5
    qa: tuple[str, float, float] | None = None  # (band name, scale, offset) of the QA band
    qa_band: str | None = None  # a screening-only QA band (--qa-band): `mask` reads its raw values from `qa_values`
    shadow: bool = False  # --qa-shadow: the qa rule also counts cloud shadow (SCL 3, QA_PIXEL bit 4)

    def describe(self, read_apart: str | None = None) -> str:
        """The rule in one line (also part of curate's cache key, so the default text stays as it was).
        `read_apart`: the name of a model input QA band the qa rule reads apart with nearest resampling on a
        reprojected source (`qaband.warped_model_qa`), said in the report rather than the band's index alone."""
        shadow = ", with cloud shadow" if self.shadow else ""  # only when set: earlier caches' keys stay valid
        if read_apart is not None and self.kind == "qa" and self.qa_band is None:
            return (
                f"qa({read_apart}: a model input band, its codes read apart with nearest{shadow}; t={self.threshold})"
            )
        if self.qa_band is not None and self.qa is not None:
            return f"qa(qa_band={self.qa_band} ({self.qa[0]}), read for screening only{shadow}; t={self.threshold})"
        bands = ", ".join(f"{k}={v}" for k, v in sorted(self.bands.items()))
        return f"{self.kind}({bands}{shadow}; t={self.threshold})"

    def mask(self, image: np.ndarray, qa_values: np.ndarray | None = None) -> np.ndarray:
        """Bool [H, W]: cloud-like pixels of a reflectance image [C, H, W] (with --qa-band, or a QA band among the
        bands of a reprojected source (`qaband.warped_model_qa`): of its raw values [H, W] in the same window,
        `qa_values`, which the qa rule reads instead of the image's band)."""
        if self.qa_band is not None:
            if qa_values is None:
                raise ValueError(f"the qa rule of --qa-band {self.qa_band} needs the band's values (qa_values)")
            raw = np.asarray(qa_values).astype(np.int64)
            return _decode_qa(self.qa[0], raw, self.shadow)  # type: ignore[index]
        b = {k: image[i].astype(np.float32) for k, i in self.bands.items()}
        if self.kind == "off":
            return np.zeros(image.shape[1:], bool)
        if self.kind == "bright":
            return np.all(image[[self.bands[k] for k in ("red", "green", "blue")]] >= self.threshold, axis=0)
        if self.kind == "qa":
            name, scale, offset = self.qa  # type: ignore[misc]
            if qa_values is not None:  # the band's raw values read apart (a reprojected source: nearest, not the
                raw = np.asarray(qa_values).astype(np.int64)  # image's interpolated codes)
            else:
                raw = np.rint((b["qa"] - offset) / scale).astype(np.int64)
            return _decode_qa(name, raw, self.shadow)
        vis = np.stack([b["blue"], b["green"], b["red"]])
        if self.kind == "rgb":
            from scipy.ndimage import uniform_filter

            m = vis.mean(0)
            mu = uniform_filter(m, TEXTURE_WINDOW, mode="reflect")
            sd = np.sqrt(np.maximum(uniform_filter(m * m, TEXTURE_WINDOW, mode="reflect") - mu * mu, 0))
            return (vis.min(0) >= self.threshold) & (_whiteness(vis) < WHITENESS_RGB) & (sd < TEXTURE_RGB)
        eps = 1e-6
        swir1, nir = b["swir16"], b["nir"]
        swir2 = b.get("swir22", swir1)
        ndsi = (b["green"] - swir1) / np.maximum(b["green"] + swir1, eps)
        ndvi = (nir - b["red"]) / np.maximum(nir + b["red"], eps)
        pcp = (
            (swir2 > 0.03)
            & (ndsi < 0.8)
            & (ndvi < 0.8)
            & (_whiteness(vis) < WHITENESS_SWIR)
            & (b["blue"] - 0.5 * b["red"] - 0.08 > 0)
            & (nir / np.maximum(swir1, eps) > 0.75)
        )
        return pcp | (b["cirrus"] >= CIRRUS) if "cirrus" in b else pcp

    def share(self, image: np.ndarray, valid: np.ndarray, qa_values: np.ndarray | None = None) -> float:
        """Share of valid pixels that are cloud-like."""
        if self.kind == "off":
            return 0.0
        return float((self.mask(image, qa_values) & valid).sum() / max(int(valid.sum()), 1))


SCL_CLOUD, SCL_SHADOW = (8, 9, 10), (3,)  # ESA L2A scene classes: cloud medium/high, thin cirrus; cloud shadows
QA60_CLOUD = (10, 11)  # opaque clouds, cirrus (QA60 has no shadow bit)
QA_PIXEL_CLOUD, QA_PIXEL_SHADOW = (1, 2, 3), (4,)  # USGS C2: dilated cloud, cirrus, cloud; cloud shadow
SHADOW_KINDS = ("scl", "qa_pixel")
"""The QA encodings with a cloud-shadow flag (`--qa-shadow`)."""


def _decode_qa(name: str, raw: np.ndarray, shadow: bool = False) -> np.ndarray:
    """Cloud pixels of raw QA codes: SCL classes 8, 9, 10; QA60 bit 10 or 11; QA_PIXEL bit 1, 2 or 3; with
    `shadow` also SCL class 3 and QA_PIXEL bit 4 (cloud shadow)."""
    if name == "scl":
        return np.isin(raw, SCL_CLOUD + (SCL_SHADOW if shadow else ()))
    bits = QA60_CLOUD if name == "qa60" else QA_PIXEL_CLOUD + (QA_PIXEL_SHADOW if shadow else ())
    return np.any([(raw >> k) & 1 for k in bits], axis=0).astype(bool)


def _shadow_refusal(rule: CloudRule, sensor: Any) -> None:
    """Refuse `--qa-shadow` for a rule that cannot tell cloud shadow: a spectral rule, or QA60 (no shadow flag)."""
    kind = rule.qa[0] if rule.kind == "qa" and rule.qa is not None else None
    if kind in SHADOW_KINDS:
        return
    if kind is not None:
        band = f"--qa-band {rule.qa_band}" if rule.qa_band is not None else f"the {kind.upper()} band of the sensor"
        what = f"{band} is QA60, which has no cloud-shadow flag"
    else:
        name = getattr(sensor, "name", sensor)
        what = f"sensor {name!r} is screened by the {rule.kind} rule, which has no shadow test"
    raise ConfigError(
        f"--qa-shadow: {what}; cloud shadow is read from an SCL (class 3) or QA_PIXEL (bit 4) band: give one with "
        "--qa-band, or drop --qa-shadow (qa_band= / qa_shadow= in Python)"
    )


def cloud_rule(
    sensor: Any,
    kind: str = "auto",
    threshold: float = 0.5,
    qa_band: tuple[str, str] | None = None,
    shadow: bool = False,
) -> CloudRule:
    """The cloud test for `sensor`: `kind` (see the module docstring), `auto` choosing the best its bands allow.
    `qa_band` (the --qa-band name and its encoding, scl/qa60/qa_pixel): a screening-only QA band, which `auto` and
    `qa` read instead of the sensor's bands. `shadow` (--qa-shadow): the qa rule counts cloud shadow too; refused
    (ConfigError) where the rule is not qa on an SCL or QA_PIXEL band."""
    rule = _cloud_rule(sensor, kind, threshold, qa_band)
    if shadow:
        _shadow_refusal(rule, sensor)
        rule.shadow = True
    return rule


def _cloud_rule(sensor: Any, kind: str, threshold: float, qa_band: tuple[str, str] | None) -> CloudRule:
    """`cloud_rule` without the shadow option."""
    if kind not in CLOUD_RULES:
        raise ConfigError(f"--cloud-rule {kind!r} (cloud_rule= in Python); use one of {', '.join(CLOUD_RULES)}")
    if qa_band is not None:
        if kind not in ("auto", "qa"):
            raise ConfigError(
                f"--qa-band {qa_band[0]} is read by the qa cloud rule; use --cloud-rule auto or qa "
                "(qa_band= / cloud_rule= in Python)"
            )
        return CloudRule("qa", {}, threshold, (qa_band[1], 1.0, 0.0), qa_band=qa_band[0])
    from geodino.data.archive_bands import qa_kind

    kinds = [qa_kind(b) for b in sensor.bands]  # SCL, or SCL_20m as `data stack` names a SAFE band
    qa = next((n for n in _QA_NAMES if n in kinds), None)
    spectral = {r: _role(sensor, r) for r in ("blue", "green", "red", "nir", "swir16", "swir22", "cirrus")}
    has_swir = all(spectral[r] is not None for r in ("blue", "green", "red", "nir", "swir16"))
    if kind == "auto":
        kind = "qa" if qa else "swir" if has_swir else "rgb" if len(sensor.bands) >= 3 else "bright"
    if kind == "off":
        return CloudRule("off")
    if kind == "qa":
        if qa is None:
            raise ConfigError(
                f"--cloud-rule qa: sensor {sensor.name!r} has no SCL, QA60 or QA_PIXEL band; choose another "
                "--cloud-rule (cloud_rule= in Python)"
            )
        i = kinds.index(qa)
        scale = sensor.scale[i] if isinstance(sensor.scale, tuple) else sensor.scale
        offset = sensor.offset[i] if isinstance(sensor.offset, tuple) else sensor.offset
        return CloudRule("qa", {"qa": i}, threshold, (qa, float(scale), float(offset)))
    if kind == "swir":
        if not has_swir:
            missing = [r for r in ("blue", "green", "red", "nir", "swir16") if spectral[r] is None]
            raise ConfigError(
                f"--cloud-rule swir: sensor {sensor.name!r} lacks {' and '.join(missing)} (the rule needs "
                f"blue, green, red, nir and swir16; its bands: {', '.join(sensor.bands)}); read the missing "
                "band(s) too or choose another --cloud-rule (cloud_rule= in Python)"
            )
        return CloudRule("swir", {k: v for k, v in spectral.items() if v is not None}, threshold)
    r, g, bl = rgb_index(sensor, len(sensor.bands))
    return CloudRule(kind, {"red": r, "green": g, "blue": bl}, threshold)


def empty_qa60(rules: Sequence[CloudRule], source_of: np.ndarray, cloud: np.ndarray, nodata: np.ndarray) -> list[int]:
    """The sources screened by a QA60 band that flagged no cloud pixel in any tile with valid pixels: Sentinel-2
    L1C of processing baseline 04.00 and later (from 2022-01-25) ship QA60 empty, the clouds moving to the
    MSK_CLASSI_OPAQUE / MSK_CLASSI_CIRRUS masks, so such a screen passes every tile without a word."""
    out = []
    for i, rule in enumerate(rules):
        if rule.kind != "qa" or rule.qa is None or rule.qa[0] != "qa60":
            continue
        sel = (np.asarray(source_of) == i) & (np.asarray(nodata) < 1.0)
        if sel.any() and not (np.asarray(cloud)[sel] > 0).any():
            out.append(i)
    return out


def swir_on_bytes(rules: Sequence[CloudRule], dtypes: Sequence[Sequence[str]]) -> list[int]:
    """The sources screened by the swir rule whose rasters hold 8-bit values (`dtypes`: each source's raster data
    types). Fmask's thresholds (SWIR-2 > 0.03, blue - 0.5 red > 0.08, NIR/SWIR-1 > 0.75) assume reflectance, and
    8-bit multispectral values are seldom reflectance x 255: DN with a sensor offset put sea and forest above the
    thresholds (the real Landsat-7 uint8 sample read at 1/255: 59 of 121 cloud-free tiles called cloud)."""
    return [i for i, (r, d) in enumerate(zip(rules, dtypes)) if r.kind == "swir" and "uint8" in set(map(str, d))]
