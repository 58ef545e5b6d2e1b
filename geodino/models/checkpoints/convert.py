"""`geodino convert`: a backbone file or HF folder between the official, HF and timm layouts, optionally with its
bands adapted, and the architecture check behind `--expect-arch` / `--expect-bands`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from geodino.errors import CheckpointError, ConfigError, GeoDinoError, plural
from geodino.models.archs import arch_kwargs
from geodino.models.caller import user_stacklevel
from geodino.models.checkpoints import (
    check_fits,
    heads_path,
    infer_config,
    read_backbone_weights,
    save_backbone,
    weights_to_bands,
)
from geodino.models.checkpoints.normalization import band_resolver, check_normalization, select_normalization
from geodino.models.checkpoints.save import refuse_sidecar_name

__all__ = ["LAYOUTS", "check_architecture", "convert_checkpoint"]

LAYOUTS = ("official", "hf", "timm")


def _band_names(value: Any, key: str) -> list[str] | None:
    """`bands` / `src_bands` as band names: numbers ([4, 3, 2], "4,3,2") matched none of a file's names and, with
    `fill="mean"`, gave every band the mean kernel with only a warning; a count is not a set of names."""
    from geodino.data.band_args import parse_backbone_bands

    if value is None:
        return None
    _count, names = parse_backbone_bands(value, key)
    if names is None:
        raise ConfigError(f"{key}={value!r} must be band names (e.g. {key}=['B04', 'B03', 'B02']), not a band count")
    return names


def _name_record(norm: dict[str, Any] | None, src_bands: Sequence[str] | None) -> dict[str, Any] | None:
    """A record that names no bands (a foreign HF processor's or timm pretrained_cfg's mean/std) named after the
    file's bands (--src-bands, else R, G, B for 3 values, the default the kernels take), so that --bands keeps the
    statistics of the bands it keeps; it was dropped (with a warning naming no bands)."""
    if not norm or norm.get("bands"):
        return norm
    names = list(src_bands) if src_bands else (["R", "G", "B"] if len(norm["mean"]) == 3 else None)
    if names is None or len(names) != len(norm["mean"]):
        return norm
    return {**norm, "bands": names}


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    src_layout: str = "auto",
    dst_layout: str = "official",
    bands: Sequence[str] | None = None,
    src_bands: Sequence[str] | None = None,
    fill: str | None = "mean",
    which: str | None = None,
    overwrite: bool = False,
    expect_arch: str | None = None,
    expect_bands: int | None = None,
    sensor: str | None = None,
    local_cls_norm: bool | None = None,
    subset: str = "copy",
) -> Path:
    """Convert a backbone file or HF folder between the official, HF and timm layouts (optionally adapting its
    bands); `.safetensors` or `.pth` by the suffix of `dst`, a folder for `hf` (and for `timm` without a suffix).
    The normalisation the source records travels along (restricted to `bands` when they are among its bands).
    Returns the written path.

    `expect_arch` / `expect_bands` make the conversion fail (one line naming the mismatching keys and shapes)
    unless the weights fit that architecture and band count.

    Band names resolve through the sensor registry (`sensor`, or the built-in sensors that know every name:
    Sentinel-2 B04/B03/B02 are red/green/blue). `fill=None` refuses names that match no band of the file
    instead of giving them the `mean` kernel. `which` chooses the backbone of a checkpoint holding several (default
    the teacher); given for a file that holds one, it is refused rather than ignored. `subset`: the rule for a subset
    of the file's bands ("copy": the trained kernels unscaled; "rescale": scaled by C_src / C_dst, the rule before).

    `local_cls_norm` (official output only): whether the written backbone has `local_cls_norm`, which HF and timm
    do not store. None: an HF/timm input gets it back (a copy of `norm`, with a warning) when the file records that
    its official model had one (geodino writes that record) or its size is the 7B's, whose release has one;
    True: re-created likewise when missing; False: none is written."""
    from geodino.io import check_writable

    bands, src_bands = _band_names(bands, "bands"), _band_names(src_bands, "src_bands")
    if expect_bands is not None:  # before any file is read: -3 or 0 bands would fail deep in building the model
        from geodino.config import whole_number

        if whole_number(expect_bands, "expect_bands", 4) < 1:
            raise ConfigError(
                f"expect_bands={expect_bands} (--expect-bands) must be a positive number of input bands (e.g. 4); "
                "pass the band count the weights should take, or leave it out"
            )
    for name, key, value in (("--from", "src_layout", src_layout), ("--to", "dst_layout", dst_layout)):
        if value not in (*LAYOUTS, "auto") or (name == "--to" and value == "auto"):
            raise ConfigError(f"{name} {value!r} ({key}= in Python) is not a layout; use one of {', '.join(LAYOUTS)}")
    suffix = Path(dst).suffix.lower()
    if dst_layout == "official" and suffix not in (".pth", ".pt", ".safetensors"):
        raise ConfigError(
            f"output {dst} must end in .safetensors, .pth or .pt (the format is chosen by the suffix); "
            "or pass --to hf / --to timm (dst_layout='hf' / 'timm' in Python) to write a Hugging Face / timm folder"
        )
    if dst_layout == "timm" and suffix not in (".pth", ".pt", ".safetensors", ""):
        raise ConfigError(
            f"output {dst} must end in .safetensors, .pth or .pt, or have no suffix (a timm folder for "
            "timm.create_model('local-dir:PATH'))"
        )
    if dst_layout == "hf" and suffix in (".pth", ".pt", ".safetensors"):  # was a folder named X.pth, silently
        raise ConfigError(
            f"output {dst}: --to hf (dst_layout='hf' in Python) writes a Hugging Face folder (config.json, "
            f"model.safetensors), not a {suffix} file; name the folder without a suffix, e.g. "
            f"{Path(dst).with_suffix('')}"
        )
    if dst_layout != "hf":  # before the (possibly large) input is read
        refuse_sidecar_name(dst)
    weights = read_backbone_weights(src, which=which)  # refuses a `which` for a file holding one backbone
    if src_layout != "auto" and src_layout != weights.layout:
        raise CheckpointError(
            f"checkpoint {src} is in the {weights.layout} layout, not {src_layout}; pass --from {weights.layout} "
            f"(src_layout={weights.layout!r} in Python), or leave it out to detect it"
        )
    state = weights.state
    norm = weights.normalization
    if norm is None and not sensor and not src_bands:
        norm = _implied_record(src, weights)  # --bands keeps it for the bands it keeps, as load_backbone does
    if bands is not None:
        state = weights_to_bands(
            weights, bands, src_bands=src_bands, sensor=sensor, fill=fill, subset=subset, source=src
        )
        norm = _name_record(norm, src_bands)  # a record naming its bands keeps them (src_bands or not)
        kept = (
            select_normalization(norm, bands, band_resolver(norm))
            if norm and list(bands) != norm.get("bands")
            else norm
        )
        if kept is None and sensor:
            # the recorded statistics for the bands the file has (what the model was trained with), the sensor's
            # for the new ones (the sensor the names come from must have each of them)
            kept = _merged_normalization(norm, sensor, bands)
        kept = _in_sensor_units(kept, (norm or {}).get("sensor"), sensor, bands, src)
        if norm and kept is None:
            lacking = [b for b in bands if str(b).lower() not in {str(x).lower() for x in norm.get("bands") or []}]
            have = ", ".join(map(str, norm.get("bands") or [])) or "(unnamed)"
            # without a sensor, the one step that keeps a record: name the sensor the new bands come from
            redo = (
                ""
                if sensor
                else "convert with --sensor NAME (sensor=NAME in Python), the sensor those bands come from, to "
                "record its statistics for them beside the recorded ones, or "
            )
            warnings.warn(
                f"the normalisation {src} records covers bands {have}, "
                f"not {', '.join(map(str, lacking))}: {dst} records none; {redo}give its users the statistics of "
                "all its bands (a sensor YAML: load_backbone(..., sensor=...), --backbone 'FILE?sensor=...')",
                stacklevel=user_stacklevel(),
            )
        norm = kept
    elif sensor or src_bands:
        norm = _own_bands_record(norm, sensor, src_bands, int(state["patch_embed.proj.weight"].shape[1]), src)
    config = dict(infer_config(state, src))
    if weights.config:
        config.update({k: v for k, v in weights.config.items() if k in config and k != "in_chans"})
    if local_cls_norm is not None and dst_layout != "official":
        raise ConfigError(
            f"--local-cls-norm (local_cls_norm= in Python) sets the local_cls_norm of an official-layout output; the "
            f"{dst_layout} layout stores none (leave it out, or pass --to official: dst_layout='official' in Python)"
        )
    if dst_layout == "official":
        state = _local_cls_norm(state, config, weights, local_cls_norm, src)
    elif weights.local_cls_norm and "local_cls_norm.weight" not in state:
        # an HF/timm input that records local_cls_norm, to HF/timm: the writer drops this copy of norm and records
        # it, so the record travels (HF -> timm -> official came back without local_cls_norm, silently)
        state = {**state, **{f"local_cls_norm.{k}": state[f"norm.{k}"] for k in ("weight", "bias")}}
        config["untie_global_and_local_cls_norm"] = True
    # always: a file with missing, extra or misshapen keys must not become a "converted" file that only fails
    # later in transformers or timm
    check_architecture(state, expect_arch, expect_bands, config, src)
    dst = check_writable(Path(dst).expanduser(), overwrite=overwrite)
    if dst_layout == "hf":
        from geodino.models.checkpoints.hf import check_hf_output

        check_hf_output(dst)  # before any work: --overwrite never replaces a folder of other content
    elif dst_layout == "timm" and not dst.suffix:
        from geodino.models.checkpoints.timm import check_timm_output

        check_timm_output(dst)
    if dst.suffix in (".pth", ".pt"):
        # the sidecar that carries the build kwargs and normalisation (a timm file's architecture and model_args),
        # always written, so an earlier file's sidecar never describes the new weights
        check_writable(heads_path(dst), overwrite=overwrite)
    return save_backbone(state, dst, layout=dst_layout, config=config, normalization=norm)


def _local_cls_norm(
    state: dict[str, Tensor], config: dict[str, Any], weights: Any, wanted: bool | None, src: str | Path
) -> dict[str, Tensor]:
    """The official-layout state with or without `local_cls_norm` (see `convert_checkpoint`), `config` updated to
    match. Re-created as a copy of `norm`: the local-crop CLS norm is applied only in training, to local crops, so
    inference is unchanged, and the official loader accepts the file with strict=True."""
    keys = ("local_cls_norm.weight", "local_cls_norm.bias")
    if wanted is False:
        config["untie_global_and_local_cls_norm"] = False
        return {k: v for k, v in state.items() if k not in keys}
    if keys[0] in state or "norm.weight" not in state:
        return state
    foreign = weights.layout in ("hf", "timm")
    arch = config.get("arch")
    table = bool(arch and arch_kwargs(arch)["untie_global_and_local_cls_norm"])
    if wanted:
        why = "local_cls_norm=True (--local-cls-norm) asks for one"
    elif foreign and weights.local_cls_norm:
        why = "the file records that its official model has one (untie_global_and_local_cls_norm)"
    elif foreign and weights.local_cls_norm is None and table:
        why = f"the official {arch} (same size) has one (untie_global_and_local_cls_norm)"
    else:
        if foreign and weights.local_cls_norm is None and arch == "vit_large":
            warnings.warn(
                f"{src} ({weights.layout} layout) stores no local_cls_norm and records no architecture: for the "
                "SAT-493M ViT-L (untie_global_and_local_cls_norm=True) pass --local-cls-norm (local_cls_norm=True "
                "in Python) to get a file the official loader accepts with strict=True; written without one",
                stacklevel=user_stacklevel(),
            )
        return state
    warnings.warn(
        f"{src} has no local_cls_norm ({weights.layout} layout) and {why}: re-created as a copy of norm, which is "
        "exact for inference (the local-crop CLS norm is used only in training, on local crops) but not the trained "
        "values",
        stacklevel=user_stacklevel(),
    )
    config["untie_global_and_local_cls_norm"] = True
    out = dict(state)
    for k in keys:
        if k.replace("local_cls_norm", "norm") in state:
            out[k] = state[k.replace("local_cls_norm", "norm")].clone()
    return out


def check_architecture(
    state: Mapping[str, Tensor],
    arch: str | None,
    bands: int | None,
    inferred: Mapping[str, Any] | None = None,
    source: str | Path = "<state_dict>",
) -> None:
    """Fail unless `state` fits `arch` (default: its own inferred architecture) with `bands` input bands
    (default: its own); untied norms follow the file."""
    from geodino.models import build_model

    cfg = dict(inferred or infer_config(state, source))
    if bands is not None:
        cfg["in_chans"] = int(bands)
    if arch is None:
        name = cfg.pop("arch", None)
        model = build_model(name, device="meta", **cfg)
    else:
        from geodino.models.archs import ARCHS, arch_kwargs

        want = arch_kwargs(arch)
        have = (int(cfg["embed_dim"]), int(cfg["depth"]))
        if have != (int(want["embed_dim"]), int(want["depth"])):  # one line, not every mismatching key
            own = cfg.get("arch")  # named only when the table's sizes are the file's (a depth-2 vit_tiny is not one)
            same = own in ARCHS and (ARCHS[own]["embed_dim"], ARCHS[own]["depth"]) == have
            name = own if same else "a ViT"
            raise CheckpointError(
                f"checkpoint {source} holds {name} (dim {have[0]}, depth {have[1]}), not {arch} (dim "
                f"{want['embed_dim']}, depth {want['depth']}); pass the weights of a {arch}, or drop --expect-arch "
                "(expect_arch= in Python)"
            )
        flags = {k: cfg[k] for k in ("untie_cls_and_patch_norms", "untie_global_and_local_cls_norm")}
        model = build_model(arch, in_chans=cfg["in_chans"], patch_size=int(cfg["patch_size"]), device="meta", **flags)
    check_fits(model, state, source, own_config=arch is None and bands is None)


def _merged_normalization(norm: Mapping[str, Any] | None, sensor: str, bands: Sequence[str]) -> dict[str, Any] | None:
    """One record for `bands`: each band the file's record `norm` covers keeps its recorded scale, offset, mean and
    std (the standardisation the model was trained with; replacing them by the sensor's statistics changed the
    input of trained kernels), each other band takes `sensor`'s; None when the sensor lacks one of those. Without
    a record: the sensor's for every band."""
    whole = _sensor_normalization(sensor, bands)
    if not norm:
        return whole
    resolve = band_resolver(norm)
    per_band: list[Mapping[str, Any]] = []
    from_record: list[str] = []
    for b in bands:
        own = select_normalization(norm, [b], resolve)
        if own is not None:
            from_record.append(str(b))
        else:
            own = _sensor_normalization(sensor, [b])
            if own is None:
                return None
        per_band.append(own)

    def column(key: str, default: float) -> float | list[float]:
        vals = [float(v[0] if isinstance(v := r.get(key, default), list) else v) for r in per_band]
        return vals[0] if len(set(vals)) == 1 else vals

    new = [str(b) for b in bands if str(b) not in from_record]
    if not from_record:
        return whole
    recorded = norm.get("sensor") or "the file's record"
    named = whole["sensor"] if whole else sensor
    return check_normalization(
        {
            "sensor": named,
            "bands": [str(b) for b in bands],
            "scale": column("scale", 1.0),
            "offset": column("offset", 0.0),
            "mean": [float(r["mean"][0]) for r in per_band],
            "std": [float(r["std"][0]) for r in per_band],
            "origin": f"{recorded} ({', '.join(from_record)}) + sensor {named} ({', '.join(new)}) (convert --sensor)",
        }
    )


def _implied_record(src: str | Path, weights: Any) -> dict[str, Any] | None:
    """A released file that records nothing (dinov3_vitl16_pretrain_sat493m-*.pth): the record of the sensor its
    name implies, which geodino loads it with, so that it travels; the HF output's processor had ImageNet's mean/std
    for the SAT ViT-L, and `--bands B02 B03 B04` wrote none."""
    from geodino.backbones.load import default_sensor_of

    c = int(weights.state["patch_embed.proj.weight"].shape[1])
    implied = default_sensor_of(Path(src).expanduser(), dict(weights.config or {}), c)
    norm = _own_bands_record(None, implied, None, c, src) if implied else None
    if norm:  # not "(convert --sensor)": no sensor was passed
        norm["origin"] = f"sensor {implied} (convert: the default for {Path(src).name})"
    return norm


def _in_sensor_units(
    record: dict[str, Any] | None, recorded: str | None, sensor: str | None, bands: Sequence[str], src: str | Path
) -> dict[str, Any] | None:
    """`record` (the output's, for `bands`, from the file's record of sensor `recorded`), or `sensor`'s for those
    bands when `recorded` is another sensor whose DN step (scale, offset) is not the sensor's: a SAT-493M record
    (8-bit DN / 255) kept for Sentinel-2 bands (DN / 10000) had `--sensor sentinel2_l2a` outputs scale S2 data by
    1/255 and standardise it with 8-bit RGB statistics. A record naming no sensor, or one in the sensor's DN step
    (landsat8's kept for landsat9), is kept."""
    whole = _sensor_normalization(sensor, bands) if record and sensor and recorded else None
    if whole is None or str(recorded).lower() == str(whole["sensor"]).lower():
        return record
    assert record is not None  # `whole` is only computed for a record
    if _steps(record, len(bands)) == _steps(whole, len(bands)):
        return record
    warnings.warn(
        f"{src} records sensor {recorded}'s normalisation, whose DN scale and offset are not sensor "
        f"{whole['sensor']}'s: the output records sensor {whole['sensor']}'s statistics for "
        f"{', '.join(map(str, bands))} (the data --sensor names), not {recorded}'s",
        stacklevel=user_stacklevel(),
    )
    return whole


def _steps(record: Mapping[str, Any], n: int) -> list[tuple[float, float]]:
    """(scale, offset) per band of a record (one value or one per band), rounded for comparison."""

    def per_band(key: str, default: float) -> list[float]:
        v = record.get(key, default)
        return [float(x) for x in v] if isinstance(v, list) else [float(v)] * n

    return [(float(f"{a:.6g}"), float(f"{b:.6g}")) for a, b in zip(per_band("scale", 1.0), per_band("offset", 0.0))]


def _sensor_normalization(sensor: Any, bands: Sequence[str]) -> dict[str, Any] | None:
    """The record of `sensor` restricted to `bands` (its scale, offset, mean and std), or None when the sensor
    lacks one of them: a converted file then records what its users' data is standardised with, as an export
    does (without it, an HF folder said do_normalize false and timm users fed unstandardised input)."""
    try:
        from geodino.data.normalization import sensor_record
        from geodino.data.sensors import get_sensor

        picked = get_sensor(sensor).select([str(b) for b in bands])
    except ImportError:  # the data part is optional for pure-model use
        return None
    except GeoDinoError:  # a band the sensor does not have
        return None
    return check_normalization(sensor_record(picked, origin=f"sensor {picked.name} (convert --sensor)"))


def _own_bands_record(
    norm: dict[str, Any] | None, sensor: str | None, src_bands: Sequence[str] | None, in_chans: int, src: str | Path
) -> dict[str, Any] | None:
    """`--sensor` and/or `--src-bands` without `--bands`: the record the output carries. The file's bands are
    `src_bands`, else the record's, else the sensor's; a file without a record gets the sensor's (its band names,
    scale, offset, mean, std: it recorded nothing and the processor passed DN through); a recorded one is kept (what
    the model was trained with), named after those bands when it names none (`--src-bands` alone was ignored, a
    wrong count too).
    A band count other than the checkpoint's, or names other than the record's, are refused in one line."""
    from geodino.data.sensors import get_sensor
    from geodino.models.checkpoints.bands import same_bands

    s = get_sensor(sensor) if sensor else None
    own = (norm or {}).get("bands")
    if src_bands:
        names = [str(b) for b in src_bands]
    else:  # the bands the file records (a 4-band record of a 12-band sensor is not refused), else the sensor's
        names = [str(b) for b in own] if own else [str(b) for b in s.bands] if s else []
    if len(names) != in_chans:
        what = "--src-bands name" if src_bands else f"sensor {s.name} has" if s else ""
        of = f" of {s.name}" if s else ""
        raise ConfigError(
            f"{what} {plural(len(names), 'band')} ({', '.join(names)}) but checkpoint {src} takes {in_chans} input "
            f"bands; name its bands (--src-bands, {in_chans} names{of}; src_bands= in Python), or adapt it to other "
            "bands (--bands ...; bands= in Python)"
        )
    if own and src_bands and not same_bands(own, names):
        raise ConfigError(
            f"--src-bands {' '.join(names)} (src_bands= in Python) are not the bands {src} records ({', '.join(own)}); "
            "leave --src-bands out (the file names its bands)"
        )
    if norm:
        recorded = (norm.get("sensor") or "").lower()
        if s and recorded and recorded != s.name.lower():
            named = _name_record(norm, names)
            replaced = _in_sensor_units(named, recorded, s.name, names, src)
            if replaced is not named:
                return replaced
            warnings.warn(
                f"{src} records the normalisation of sensor {norm['sensor']}, which the output keeps (what the model "
                f"was trained with), not sensor {s.name}'s; pass the sensor at load time to replace it",
                stacklevel=user_stacklevel(),
            )
        return _name_record(norm, names)
    if s is None:
        warnings.warn(
            f"{src} records no normalisation, so the output cannot record the --src-bands names (src_bands= in Python) "
            "without statistics; pass their sensor too (--sensor NAME; sensor= in Python) to record its statistics for "
            "them",
            stacklevel=user_stacklevel(),
        )
        return None
    rec = _sensor_normalization(s, names)
    if rec is None:
        raise ConfigError(
            f"--src-bands {' '.join(names)} (src_bands= in Python): not all are bands of sensor {s.name} "
            f"({', '.join(map(str, s.bands))})"
        )
    return rec
