"""A backbone spec's options taken out and checked: the options every kind shares (`bands`, `sensor`, `fill`,
`subset`, `seed`), an `arch:` spec's build options, and `check_spec`, which raises what `load_backbone` would for
a spec's own text without loading weights. Torch-free at import: `load_backbone`'s imports stay in its module."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from geodino.backbones.normalization import sensor_stats
from geodino.backbones.spec import (
    DEFAULT_PATCH,
    as_int,
    check_build_options,
    check_kind_options,
    parse_spec,
    parse_value,
)
from geodino.data.band_args import parse_backbone_bands
from geodino.errors import CheckpointError, ConfigError, plural


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
        from geodino.backbones.load import _baseline

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
