"""`load_backbone`: a `FrozenBackbone` from a spec string (arch, timm or checkpoint path) or an in-memory model."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodino.backbones.frozen import FrozenBackbone
from geodino.backbones.load_path import _from_path, default_sensor_of
from geodino.backbones.normalization import IMAGENET_MEAN, IMAGENET_STD, sensor_stats
from geodino.backbones.spec import DEFAULT_PATCH, as_int, check_kind_options, parse_spec
from geodino.backbones.spec_check import _arch_options, _spec_options, _subset_option, check_spec
from geodino.backbones.timm import build_timm, timm_geometry
from geodino.data.band_args import parse_backbone_bands
from geodino.errors import ConfigError, plural
from geodino.models.caller import user_stacklevel

# check_spec (spec_check.py) and default_sensor_of (load_path.py) are imported from here by geodino's modules and
# tests (tests/eval/conftest.py patches `geodino.backbones.load.check_spec`, which compare and info look up here)
__all__ = ["check_device", "check_spec", "default_sensor_of", "load_backbone"]


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, or one line when it names a CUDA GPU this machine does not have (torch's own
    error is a multi-line RuntimeError about drivers, raised at the first tensor moved there)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a device torch knows; use cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"device {device!r} asks for a CUDA GPU but torch sees none here; use cpu")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(
                f"device {device!r} does not exist: this machine has {plural(n, 'CUDA GPU')}, cuda:0..{n - 1}"
            )
    return dev


def load_backbone(
    spec: str | Path | nn.Module,
    *,
    bands: int | str | Sequence[str] | None = None,
    sensor: Any = None,
    device: str | torch.device = "cpu",
    fill: str | None = None,
    amp: bool | None = None,
    subset: str | None = None,
    src_bands: str | Sequence[str] | None = None,
) -> FrozenBackbone:
    """A frozen backbone from a spec (see the module docstring); `bands` names (or counts) the input bands and,
    for a checkpoint with other bands, adapts its patch embedding; `sensor` sets the normalisation. `src_bands`
    (checkpoints only) names the file's input channels when it records no names (a foreign >3-band HF or timm
    file), so that `bands` can select or reorder them and a recorded mean/std follows its bands. `subset`
    (spec option `?subset=`): the rule for a subset of a checkpoint's bands, "copy" (default: the trained kernels
    unscaled) or "rescale" (scaled by C_src / C_dst, the rule before; `adapt_patch_embed`). `fill` and `subset`
    act on checkpoints only: with an `arch:`, `timm:` or `baseline:` spec or a module they are refused in one line
    (`spec.check_kind_options`), as `?seed=` is on a checkpoint or baseline."""
    if not isinstance(spec, str | Path | nn.Module):  # load_backbone(3) said "backbone checkpoint 3 not found"
        got = f"{type(spec).__name__} {spec!r:.60}"
        raise ConfigError(f"spec must be a spec string (arch:vit_small, timm:NAME), a path or an nn.Module, got {got}")
    device = check_device(device)
    _, src_names = parse_backbone_bands(src_bands, "src_bands")
    if src_bands is not None and (src_names is None or isinstance(spec, nn.Module) or parse_spec(spec)[0] != "path"):
        raise ConfigError(
            f"src_bands={src_bands!r} names the input channels of a checkpoint file or folder (band names, one per "
            "channel); leave it out for other backbones"
        )
    if isinstance(spec, nn.Module):
        check_kind_options("module", {}, "<module>", {"fill": fill, "subset": subset})
        return _from_module(spec, bands=bands, sensor=sensor, device=device, amp=amp)
    kind, target, options, bands, sensor, fill, seed = _spec_options(spec, bands, sensor, fill, subset)
    subset = _subset_option(options, subset)
    spec_text = str(spec)
    n_bands, names = parse_backbone_bands(bands)

    if kind == "arch":
        from geodino.models import build_model

        overrides, patch, in_chans = _arch_options(options, n_bands, spec_text)
        with torch.random.fork_rng(devices=[]):  # seeded weights without moving the caller's generator
            torch.manual_seed(seed)
            model = build_model(target, patch_size=patch, in_chans=in_chans, **overrides)
        stats = sensor_stats(sensor, names, in_chans, spec_text, None)
        # what makes the weights, not the spec's text: `arch:vit_small` and `arch:vit_small?seed=0` are one model
        build = {k: str(v) for k, v in sorted(overrides.items())}
        fingerprint = {"arch": target, "build": build, "patch_size": patch, "in_chans": in_chans, "seed": seed}
        fingerprint["bands"] = names or n_bands
        fb = _frozen(model, "geodino", stats, spec_text, fingerprint, amp, sensor)
        return _unstandardised_names(fb, names, sensor).to(device)

    if kind == "timm":
        model = build_timm(target, options, n_bands, seed)
        in_chans = timm_geometry(model)[2]
        # timm's pretrained_cfg dict (nn.Module's __getattr__ types it Tensor | Module)
        default_mean = list(model.pretrained_cfg.get("mean", IMAGENET_MEAN))  # type: ignore[union-attr, operator]
        default_std = list(model.pretrained_cfg.get("std", IMAGENET_STD))  # type: ignore[union-attr, operator]
        if sensor is None and in_chans == len(default_mean):
            stats = (None, default_mean, default_std, names or (["R", "G", "B"] if in_chans == 3 else None))
        else:
            stats = sensor_stats(sensor, names, in_chans, spec_text, None)
        build = {k: str(v) for k, v in sorted(options.items())}
        fingerprint = {"timm": target, "build": build, "bands": names or n_bands, "seed": seed}
        fb = _frozen(model, "timm", stats, spec_text, fingerprint, amp, sensor)
        return _unstandardised_names(fb, names, sensor).to(device)

    if kind == "baseline":
        return _baseline(target, spec_text, options, n_bands, names, sensor).to(device)

    path = Path(target).expanduser()
    return _from_path(path, spec_text, options, n_bands, names, sensor, (fill, subset), device, amp, src_names)


def _baseline(
    name: str, spec_text: str, options: dict[str, str], n_bands: int | None, names: list[str] | None, sensor: Any
) -> FrozenBackbone:
    """`baseline:colour`: per-band colour statistics behind the frozen-backbone interface (backbones.colour). Its
    band count comes from `bands`, `in_chans`, or else the sensor; its histogram bins assume standardised input,
    so it warns without a sensor for non-RGB data (mean 0 / std 1 would put most pixels in one bin)."""
    from geodino.backbones.colour import BASELINES, ColourStatistics

    key = name.strip().lower().replace("color", "colour")
    if key not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r} in backbone spec {spec_text}; known: {', '.join(BASELINES)}")
    unknown = sorted(set(options) - {"in_chans", "patch_size", "bins", "range"})
    if unknown:
        raise ConfigError(
            f"{plural(len(unknown), 'unknown option')} in backbone spec {spec_text}: {', '.join(unknown)}; "
            "baseline:colour accepts bands, sensor, in_chans, patch_size, bins, range"
        )
    in_chans = n_bands
    if "in_chans" in options:
        in_chans = as_int(options["in_chans"], "in_chans")
        if n_bands is not None and n_bands != in_chans:
            raise ConfigError(f"backbone spec {spec_text}: bands={n_bands} but in_chans={in_chans}")
    if in_chans is None and sensor is not None:
        from geodino.data.sensors import get_sensor

        in_chans = get_sensor(sensor).n_bands
    in_chans = in_chans or 3
    try:
        limit = float(options.get("range", 3.0))
    except ValueError:
        raise ConfigError(f"backbone spec option range={options['range']!r} must be a number") from None
    model = ColourStatistics(
        in_chans,
        patch_size=as_int(options.get("patch_size", str(DEFAULT_PATCH)), "patch_size"),
        bins=as_int(options.get("bins", "16"), "bins"),
        limit=limit,
    )
    stats = sensor_stats(sensor, names, in_chans, spec_text, None)
    if sensor is None and in_chans != 3:
        warnings.warn(
            f"backbone {spec_text}: no sensor, so the {plural(in_chans, 'band')} {'is' if in_chans == 1 else 'are'} "
            "not standardised and the histogram bins "
            f"(±{limit:g} standard units) see raw values; pass the data's sensor (?sensor=NAME, or backbone_sensor= "
            "for probes)",
            stacklevel=user_stacklevel(),
        )
    fingerprint = {"spec": spec_text, "bands": names or in_chans}  # no weights; feature caches key on mean/std
    return _frozen(model, "baseline", stats, spec_text, fingerprint, None, sensor)


def _frozen(
    model: nn.Module,
    kind: str,
    stats: tuple[Any, Any, Any, Any],
    spec: str,
    fingerprint: dict[str, Any],
    amp: Any,
    passed: Any = None,
) -> FrozenBackbone:
    """A FrozenBackbone from `sensor_stats`' (sensor, mean, std, band names). `passed`: the sensor the caller
    named (`sensor=` / `?sensor=`), which then stands for a record: its DN scale and offset, not only its mean/std,
    are what `geodino embed` and the probes apply to the data (as for an export that records that sensor; a
    Landsat C2 L2 backbone otherwise got 16-bit data scaled by 1e-4 with no offset)."""
    s, mean, std, band_names = stats
    fb = FrozenBackbone(
        model,
        spec=spec,
        kind=kind,
        mean=mean,
        std=std,
        bands=band_names,
        sensor=s,
        amp=amp,
        fingerprint_source=fingerprint,
    )
    if passed is not None and not isinstance(s, str | type(None)):
        from geodino.data.normalization import sensor_record

        fb.normalization = sensor_record(s, origin=f"sensor {s.name} (passed)")
    return fb


def _from_module(
    model: nn.Module, *, bands: Any, sensor: Any, device: str | torch.device, amp: bool | None
) -> FrozenBackbone:
    """Wrap an in-memory DinoVisionTransformer (e.g. a just-trained teacher); fingerprint from its weights."""
    if not hasattr(model, "get_intermediate_layers"):
        raise ConfigError(f"{type(model).__name__} is not a DinoVisionTransformer; pass a spec string instead")
    _, names = parse_backbone_bands(bands)
    stats = sensor_stats(sensor, names, int(model.in_chans), "<module>", None)  # type: ignore[arg-type]  # duck-typed
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    fb = _frozen(model, "geodino", stats, "<module>", {"weights": h.hexdigest()}, amp, sensor)
    return _unstandardised_names(fb, names, sensor).to(device)


def _unstandardised_names(fb: FrozenBackbone, names: list[str] | None, passed: Any) -> FrozenBackbone:
    """Warn (one line naming sensor= / ?sensor=) when band names were given without a sensor and the backbone
    records no statistics, so its input is left unstandardised (mean 0 / std 1): the names alone chose no statistics,
    which `load_backbone("arch:vit_small", bands=["red", "green", "blue", "nir"])` did without a word. Not refused:
    the names still say which band is which (probes' RGB previews read them, and the band-count messages suggest
    `?bands=red,green,blue`); the 3-band default (ImageNet statistics) is documented and stays quiet."""
    identity = bool((fb.mean == 0).all()) and bool((fb.std == 1).all())
    if names is None or passed is not None or fb.sensor is not None or not identity:
        return fb
    fb.norm_source = "none: bands named without a sensor (mean 0 / std 1)"
    warnings.warn(
        f"backbone {fb.spec}: band names {', '.join(names)} were given without a sensor, so nothing gives their "
        "statistics and the input is not standardised (mean 0 / std 1); pass the sensor they are bands of "
        "(load_backbone(..., sensor=NAME), ?sensor=NAME in a spec, backbone_sensor=NAME for probes)",
        stacklevel=user_stacklevel(),
    )
    return fb
