"""A backbone from a checkpoint path: its weights read, its bands adapted to the ones asked for, and its input
normalisation chosen (the file's record, a sensor passed or implied by its name, or the documented default)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from geodino.backbones.frozen import FrozenBackbone
from geodino.backbones.normalization import reordered, reordering, sensor_stats
from geodino.errors import CheckpointError, ConfigError, plural
from geodino.models.caller import user_stacklevel

log = logging.getLogger("geodino.backbones")


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
    from geodino.backbones.load import _frozen
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
        assert names is not None  # `order` needs `adapted`, which only named bands set
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
