"""`load_backbone`: a `FrozenBackbone` from a spec string (arch, timm or checkpoint path) or an in-memory model."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodino.backbones.frozen import FrozenBackbone
from geodino.backbones.normalization import IMAGENET_MEAN, IMAGENET_STD, reordered, reordering, sensor_stats
from geodino.backbones.spec import (
    DEFAULT_PATCH,
    as_int,
    check_build_options,
    check_kind_options,
    parse_spec,
    parse_value,
)
from geodino.backbones.timm import build_timm, timm_geometry
from geodino.data.band_args import parse_backbone_bands
from geodino.errors import CheckpointError, ConfigError, plural
from geodino.models.caller import user_stacklevel

log = logging.getLogger("geodino.backbones")


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
        default_mean = list(model.pretrained_cfg.get("mean", IMAGENET_MEAN))
        default_std = list(model.pretrained_cfg.get("std", IMAGENET_STD))
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


def _subset_option(options: dict[str, str], subset: str | None) -> str:
    """The band-subset rule: `subset=` passed by the caller, else the spec's `?subset=`, else "copy"; checked."""
    from geodino.models.checkpoints.bands import SUBSET_RULES

    given = options.pop("subset", None)
    rule = subset or given or "copy"
    if rule not in SUBSET_RULES:
        raise ConfigError(
            f"subset={rule!r} must be 'copy' or 'rescale' (how a subset of a checkpoint's bands keeps its kernels)"
        )
    return rule


def _spec_options(
    spec: str | Path, bands: Any, sensor: Any, fill: str | None, subset: str | None = None
) -> tuple[str, str, dict[str, str], Any, Any, str, int]:
    """(kind, target, the kind's own options, bands, sensor, fill, seed) of a spec string: the options every kind
    shares are taken out of the `?` tail; `bands`/`sensor` passed by the caller win over the spec's. A shared
    option the kind does nothing for (`?subset=` on `arch:`, `fill=` with a timm spec ...) is refused in one line."""
    kind, target, options = parse_spec(spec)
    check_kind_options(kind, options, str(spec), {"fill": fill, "subset": subset})
    if bands is None and "bands" in options:
        bands = options.pop("bands")
    else:
        options.pop("bands", None)
    if sensor is None:
        sensor = options.pop("sensor", None) or None
    else:
        options.pop("sensor", None)
    fill = fill or options.pop("fill", "mean")
    options.pop("fill", None)
    if fill not in ("mean", "zeros"):  # checked here: only a band adaptation reads it, and most loads adapt nothing
        raise ConfigError(f"fill={fill!r} must be 'mean' or 'zeros' (how bands the weights lack are initialised)")
    # a random backbone is the same weights every time unless ?seed= asks for others (unseeded, two probes of
    # `arch:vit_small` would compare different models under one name)
    seed = as_int(options.pop("seed"), "seed") if "seed" in options else 0
    return kind, target, options, bands, sensor, fill, seed


def _arch_options(options: dict[str, str], n_bands: int | None, spec_text: str) -> tuple[dict[str, Any], int, int]:
    """(build overrides, patch_size, in_chans) of an `arch:` spec, each option checked (one line naming it)."""
    overrides = {k: parse_value(v) for k, v in options.items()}
    patch = as_int(str(overrides.pop("patch_size", DEFAULT_PATCH)), "patch_size")
    in_chans = as_int(str(overrides.pop("in_chans", n_bands or 3)), "in_chans")
    if n_bands is not None and n_bands != in_chans:
        raise ConfigError(f"backbone spec {spec_text}: bands={n_bands} but in_chans={in_chans}")
    check_build_options({"patch_size": patch, "in_chans": in_chans, **overrides}, spec_text)
    return overrides, patch, in_chans


def check_spec(spec: str | Path) -> None:
    """Raise the error `load_backbone(spec)` would raise for the spec's own text (bad option values, an unknown
    architecture, baseline or sensor, a checkpoint path that does not exist), without loading weights: an `arch:`
    model is built on the meta device, a baseline (no weights) is built, a checkpoint is only looked for and a timm
    name only looked up. Used to stop `probe --compare` on a bad comparison spec before the main run."""
    kind, target, options, bands, sensor, _fill, _seed = _spec_options(spec, None, None, None)
    _subset_option(options, None)
    spec_text = str(spec)
    n_bands, names = parse_backbone_bands(bands)
    if kind == "arch":
        from geodino.models import build_model

        overrides, patch, in_chans = _arch_options(options, n_bands, spec_text)
        build_model(target, patch_size=patch, in_chans=in_chans, device="meta", **overrides)
        sensor_stats(sensor, names, in_chans, spec_text, None)
    elif kind == "baseline":
        with warnings.catch_warnings():  # its own load warns again, once
            warnings.simplefilter("ignore")
            _baseline(target, spec_text, options, n_bands, names, sensor)
    elif kind == "timm":
        from geodino.backbones.timm import known_timm_name

        if not known_timm_name(target):
            raise ConfigError(f"unknown timm model {target!r} in backbone spec {spec_text}")
    else:
        path = Path(target).expanduser()
        if not path.exists():
            from geodino.backbones.spec import missing_checkpoint

            raise CheckpointError(missing_checkpoint(path))
        unknown = sorted(set(options) - {"which"})
        if unknown:
            raise ConfigError(
                f"{plural(len(unknown), 'unknown option')} in backbone spec {spec_text}: {', '.join(unknown)}; "
                "checkpoint specs accept bands, sensor, fill, subset, which"
            )
        if sensor is not None:  # `FILE?sensor=nosuch` passed this check and failed only at its load
            from geodino.data.sensors import get_sensor

            get_sensor(sensor)


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


def default_sensor_of(path: Path, config: dict[str, Any], in_chans: int) -> str | None:
    """The sensor whose statistics a file without a normalisation record is loaded with: its config's, else one
    its released name implies (sat493m, or imagenet for a 3-band lvd1689m file); None: ImageNet for 3 bands, else
    mean 0 / std 1. `geodino info` says the same."""
    lower = path.name.lower()
    default = config.get("sensor") or ("sat493m" if "sat493m" in lower else None)
    if default is None and in_chans == 3 and "lvd1689m" in lower:
        default = "imagenet"
    return default


def _from_path(
    path: Path,
    spec_text: str,
    options: dict[str, str],
    n_bands: int | None,
    names: list[str] | None,
    sensor: Any,
    fill_subset: tuple[str, str],
    device: str | torch.device,
    amp: bool | None,
    given_src: list[str] | None = None,
) -> FrozenBackbone:
    """A checkpoint's backbone; `fill_subset`: (fill, subset), the band-adaptation rules; `given_src`: the
    caller's names for the file's channels (`src_bands=`)."""
    fill, subset = fill_subset
    from geodino.models.checkpoints import build_from_state, read_backbone_weights, resolve_bands
    from geodino.models.checkpoints.normalization import band_resolver, describe_normalization, select_normalization

    if not path.exists():
        from geodino.backbones.spec import missing_checkpoint

        raise CheckpointError(missing_checkpoint(path))
    which = options.pop("which", None)  # given for a file holding one backbone: refused by read_backbone_weights
    unknown = sorted(set(options))
    if unknown:
        raise ConfigError(
            f"{plural(len(unknown), 'unknown option')} in backbone spec {spec_text}: {', '.join(unknown)}; "
            "checkpoint specs accept bands, sensor, fill, subset, which"
        )
    weights = read_backbone_weights(path, which=which)
    state = weights.state
    config = weights.config or {}
    c = int(state["patch_embed.proj.weight"].shape[1])
    src_bands = config.get("bands") if isinstance(config.get("bands"), list) else None
    if src_bands is None and weights.normalization and weights.normalization.get("bands"):
        src_bands = list(weights.normalization["bands"])  # the bands the export records
    if given_src is not None:
        src_bands = _given_src_bands(given_src, c, weights.normalization, path)
    named_src = src_bands  # the file's channel names as given or carried (not the 3-band guess below)
    if src_bands is None and c == 3:
        src_bands = ["R", "G", "B"]
    default_sensor = default_sensor_of(path, config, c)
    adapted, resolved = False, names
    if n_bands is not None and n_bands != c and names is None:
        raise CheckpointError(
            f"checkpoint {path} has {c} input bands but bands={n_bands} was requested; name the bands "
            f"(bands=B02,B03,...) to adapt its patch embedding from {src_bands or f'{c} unnamed bands'}"
        )
    if names is not None:
        # named bands are matched by name even when the count is the file's: another order (or another band)
        # must move (or replace) kernels, not feed blue to the red kernel
        before = state["patch_embed.proj.weight"]
        recorded_sensor = (weights.normalization or {}).get("sensor") or config.get("sensor")
        state, resolved = resolve_bands(
            state,
            names,
            src_bands=src_bands,
            sensor=sensor,
            fill=fill,
            source=path,
            check_sensor=False,
            src_sensor=recorded_sensor,
            subset=subset,
        )
        adapted = state["patch_embed.proj.weight"] is not before
    model = build_from_state(state, config, source=path)
    recorded = weights.normalization
    if recorded is not None and adapted:
        # a record naming no bands (a foreign HF processor's or timm pretrained_cfg's mean/std) is named after the
        # file's bands (src_bands: the config's, else R, G, B for 3) first, as convert --bands does; it was dropped
        if not recorded.get("bands") and src_bands and len(src_bands) == len(recorded["mean"]):
            recorded = {**recorded, "bands": list(src_bands)}
        recorded = select_normalization(recorded, names or [], band_resolver(recorded))
    # the network loaded, not how `which` spelt it: a distill checkpoint's student (FILE, ?which=NAME, NAME.ema are
    # one network); `which or "teacher"` otherwise, so that caches of pretraining checkpoints keep their keys
    fp: dict[str, Any] = {"file": str(path), "which": weights.network or which or "teacher"}
    if adapted:
        fp.update(bands=names, fill=fill)
        if given_src is not None:  # other names for the file's channels pick other kernels
            fp["src_bands"] = given_src
        if model.in_chans < c and subset == "copy":  # fewer bands: a subset's kernels differ from the old rule's
            fp["subset"] = subset
    if sensor is None and recorded is not None and len(recorded["mean"]) == model.in_chans:
        band_names = names if names is not None and not recorded.get("bands") else recorded.get("bands") or names
        band_names = band_names or named_src  # a record naming no bands: the src_bands (or config's) names
        stats = (recorded.get("sensor") or None, recorded["mean"], recorded["std"], band_names)
        fb = _frozen(model, "geodino", stats, spec_text, fp, amp)
        fb.normalization = recorded
        place = weights.normalization_from
        fb.norm_source = f"recorded in {place}: {describe_normalization(recorded, place)}"
        log.info("backbone %s: normalisation %s", spec_text, fb.norm_source)
        return fb.to(device)
    bands_for_stats = names if names is not None else (src_bands if not adapted else None)
    # the names as the kernels matched them (SR_B1, SR_B2, SR_B3 are blue, green, red through landsat7 and 5): a
    # reordering of the file's bands by those names keeps its default statistics, as a recorded mean/std is kept
    order = reordering(src_bands, resolved) if adapted and sensor is None else None
    default = default_sensor if order is not None or not adapted else None
    if default is not None and sensor is None and not adapted and names is not None:
        bands_for_stats = src_bands  # the file's own bands (B04, B03, B02 are R, G, B): the sensor's names for them
    if order is not None:  # the file's own bands in another order: its default statistics, moved with the kernels
        stats = reordered(sensor_stats(None, src_bands, model.in_chans, spec_text, default), order, names)
    else:
        stats = sensor_stats(sensor, bands_for_stats, model.in_chans, spec_text, default)
    fb = _frozen(model, "geodino", stats, spec_text, fp, amp, sensor)
    s = stats[0]
    if sensor is not None:
        fb.norm_source = f"sensor {getattr(s, 'name', s)} (passed)"
        if weights.normalization is not None:
            fb.norm_source += f"; the file records {describe_normalization(weights.normalization)}"
    elif default is not None:
        fb.norm_source = f"sensor {getattr(s, 'name', s)} (the default for {path.name})"
    else:
        what = "ImageNet mean/std (the 3-band default)" if model.in_chans == 3 else "mean 0 / std 1"
        fb.norm_source = f"none recorded: {what}"
        why = "after band adaptation to bands the record lacks" if adapted and weights.normalization else ""
        why = why or (
            f"after band adaptation to bands its default ({default_sensor}) lacks" if adapted and default_sensor else ""
        )
        warnings.warn(
            f"backbone {spec_text} records no input normalisation{' ' + why if why else ''}: using {what}; pass "
            "the sensor it was trained with (load_backbone(..., sensor=NAME), the spec option ?sensor=NAME as in "
            f"--backbone '{path}?sensor=sentinel2_l2a', or backbone_sensor=NAME for probes)",
            stacklevel=user_stacklevel(),
        )
    log.info("backbone %s: normalisation %s", spec_text, fb.norm_source)
    return fb.to(device)


def _given_src_bands(given: list[str], c: int, recorded: dict[str, Any] | None, path: Path) -> list[str]:
    """`src_bands=` checked against the file: one name per input channel, and the record's own names (when it
    has some) are the same bands, since its statistics are selected by them."""
    from geodino.models.checkpoints.bands import same_bands

    if len(given) != c:
        raise ConfigError(
            f"src_bands names {plural(len(given), 'band')} ({', '.join(given)}) but checkpoint {path} has {c} "
            "input channels; name each of them, in the file's order"
        )
    own = (recorded or {}).get("bands")
    if own and not same_bands(own, given):
        raise ConfigError(
            f"src_bands {', '.join(given)} are not the bands checkpoint {path} records ({', '.join(own)}); leave "
            "src_bands out (the file names its bands)"
        )
    return list(given)


def _from_module(
    model: nn.Module, *, bands: Any, sensor: Any, device: str | torch.device, amp: bool | None
) -> FrozenBackbone:
    """Wrap an in-memory DinoVisionTransformer (e.g. a just-trained teacher); fingerprint from its weights."""
    if not hasattr(model, "get_intermediate_layers"):
        raise ConfigError(f"{type(model).__name__} is not a DinoVisionTransformer; pass a spec string instead")
    _, names = parse_backbone_bands(bands)
    stats = sensor_stats(sensor, names, int(model.in_chans), "<module>", None)
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
