"""Frozen backbones from a spec string: what probes, feature rasters and distillation share.

A spec is one of:

- a checkpoint path: official `dinov3_*.pth`, a geodino export (`.pth` / `.safetensors`) or training checkpoint
  (`.ckpt`), an HF `DINOv3ViTModel` folder (`config.json` + `model.safetensors`), a timm `*_dinov3` state_dict;
  the architecture is inferred from the weights;
- `arch:vit_small` — a randomly initialised geodino backbone (a baseline, and for tests);
- `timm:<name>` — any timm model, through timm's `forward_intermediates` (a baseline; `pretrained=true` needs the
  HF hub or its cache).

Options follow a `?`, joined by `&`: `seed=0`, `bands=12` or `bands=B02,B03,B04,B08`, `patch_size=16`,
`sensor=sentinel2_l2a`, `fill=mean|zeros` (band adaptation), `which=teacher|student` (checkpoints holding
several backbones), `pretrained=true` (timm), and for `arch:` any build option (`depth=2`, `in_chans=...`).
Keyword arguments of `load_backbone` win over spec options.

`FrozenBackbone.features(x, layers)` returns patch maps [B, D, h, w] and CLS tokens [B, D] from chosen blocks
("last", "four_last", "four_even" (blocks every quarter: ViT-L [5, 11, 17, 23]), "four_even_official" (the
official evaluation's ViT-L [4, 11, 17, 23] quirk) or a list of block indices). Inputs to `features` are
already normalised: `normalize(x)` standardises reflectance-scaled input with the backbone's sensor mean/std.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch
from torch import Tensor, nn

from geodino.errors import CheckpointError, ConfigError, InputError

__all__ = ["FrozenBackbone", "layer_indices", "load_backbone", "parse_spec"]

log = logging.getLogger("geodino.backbones")

LAYER_SETS = ("last", "four_last", "four_even", "four_even_official")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SAT493M_MEAN = (0.430, 0.411, 0.296)
SAT493M_STD = (0.213, 0.156, 0.143)


# ----------------------------------------------------------------------------------------------------------------
# spec parsing
# ----------------------------------------------------------------------------------------------------------------


def parse_spec(spec: str | Path) -> tuple[str, str, dict[str, str]]:
    """(kind, target, options) with kind in {'path', 'arch', 'timm'}; options from the `?a=1&b=2` tail."""
    text = str(spec).strip()
    if not text:
        raise ConfigError("empty backbone spec; pass a checkpoint path, arch:vit_small or timm:<name>")
    options: dict[str, str] = {}
    head = text
    if "?" in text and not Path(text).expanduser().exists():
        head, query = text.split("?", 1)
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
        bad = [p for p in query.split("&") if p and "=" not in p]
        if bad:
            raise ConfigError(f"backbone spec option {bad[0]!r} in {text!r} is not key=value (e.g. ?bands=12&seed=0)")
        options = {k.strip(): v.strip() for k, v in pairs}
    if head.startswith("arch:"):
        return "arch", head[5:], options
    if head.startswith("timm:"):
        return "timm", head[5:], options
    return "path", head, options


def _as_bool(value: str, key: str) -> bool:
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"backbone spec option {key}={value!r} must be true or false")


def as_int(value: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"backbone spec option {key}={value!r} must be an integer") from None


_POSITIVE = ("patch_size", "in_chans", "embed_dim", "depth", "num_heads")


def check_build_options(overrides: dict[str, Any], spec: str) -> None:
    """One line naming the option when an `arch:` build option has the wrong type (e.g. `in_chans=abc`)."""
    import typing

    from geodino.models.vit import DinoVisionTransformer

    hints = typing.get_type_hints(DinoVisionTransformer.__init__)
    for key, value in overrides.items():
        hint = hints.get(key)
        if hint is None:
            continue  # unknown keys are named by build_model
        allowed = typing.get_args(hint) or (hint,)
        if value is None and type(None) in allowed:
            continue
        ok = (
            (int in allowed and isinstance(value, int) and not isinstance(value, bool))
            or (float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (bool in allowed and isinstance(value, bool))
            or (str in allowed and isinstance(value, str))
        )
        if not ok:
            names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
            want = " or ".join(names.get(t, t.__name__) for t in allowed if t is not type(None))
            raise ConfigError(f"backbone spec {spec}: option {key}={value!r} must be {want}")
        if key in _POSITIVE and value < 1:
            raise ConfigError(f"backbone spec {spec}: option {key}={value!r} must be a positive integer")


def parse_value(value: str) -> Any:
    """A spec option value for an arch build override: int, float, bool, none or string."""
    low = value.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _bands_option(bands: Any) -> tuple[int | None, list[str] | None]:
    """(count, names) from `bands` given as an int, "12", "B02,B03" or a list of names."""
    if bands is None:
        return None, None
    if isinstance(bands, int):
        return bands, None
    if isinstance(bands, str):
        text = bands.strip()
        if text.isdigit():
            return int(text), None
        names = [b.strip() for b in text.split(",") if b.strip()]
    else:
        names = [str(b) for b in bands]
    if not names:
        raise ConfigError("bands is empty; pass a band count (bands=12) or names (bands=B02,B03,B04)")
    return len(names), names


# ----------------------------------------------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------------------------------------------


def layer_indices(layers: str | int | Sequence[int], n_blocks: int) -> list[int]:
    """Block indices for a layer set name, a count of last blocks, or explicit indices (negative allowed)."""
    if isinstance(layers, str):
        key = layers.strip().lower()
        if key == "last":
            return [n_blocks - 1]
        if key == "four_last":
            return list(range(max(0, n_blocks - 4), n_blocks))
        if key == "four_even":
            step = max(1, n_blocks // 4)
            return [i * step - 1 for i in range(1, 5)] if n_blocks >= 4 else list(range(n_blocks))
        if key == "four_even_official":  # the official eval forces [4, 11, 17, 23] for 24-block models
            return [4, 11, 17, 23] if n_blocks == 24 else layer_indices("four_even", n_blocks)
        raise ConfigError(f"unknown layers {layers!r}; use one of {', '.join(LAYER_SETS)} or a list of block indices")
    if isinstance(layers, int):
        if not 1 <= layers <= n_blocks:
            raise ConfigError(f"layers={layers} last blocks requested from a backbone with {n_blocks} blocks")
        return list(range(n_blocks - layers, n_blocks))
    out = []
    for i in layers:
        j = int(i) + n_blocks if int(i) < 0 else int(i)
        if not 0 <= j < n_blocks:
            raise ConfigError(f"layer index {i} out of range for a backbone with {n_blocks} blocks (0..{n_blocks - 1})")
        out.append(j)
    if not out:
        raise ConfigError("layers is an empty list; pass block indices or one of " + ", ".join(LAYER_SETS))
    return out


# ----------------------------------------------------------------------------------------------------------------
# the frozen backbone
# ----------------------------------------------------------------------------------------------------------------


class FrozenBackbone(nn.Module):
    """An eval-mode, no-grad backbone with normalisation and multi-layer features (see module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        spec: str,
        kind: str,
        mean: Sequence[float],
        std: Sequence[float],
        bands: list[str] | None,
        sensor: Any = None,
        fingerprint_source: dict[str, Any] | None = None,
        amp: bool | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.spec = spec
        self.kind = kind  # "geodino" or "timm"
        self.bands = bands
        self.sensor = sensor
        self.amp = amp
        self._fp_source = fingerprint_source or {"spec": spec}
        # where mean/std came from (a recorded export, a passed sensor, a default) and the record itself
        self.norm_source = f"sensor {getattr(sensor, 'name', sensor)}" if sensor is not None else "spec defaults"
        self.normalization: dict[str, Any] | None = None
        self._fingerprint: str | None = None
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1), persistent=False)
        if kind == "geodino":
            self.patch_size = int(model.patch_size)
            self.embed_dim = int(model.embed_dim)
            self.in_chans = int(model.in_chans)
            self.n_blocks = int(model.n_blocks)
        else:
            self.patch_size, self.embed_dim, self.in_chans, self.n_blocks = timm_geometry(model)
        if self.mean.numel() != self.in_chans:
            raise ConfigError(
                f"normalisation has {self.mean.numel()} bands but backbone {spec} takes {self.in_chans}; pass a "
                "sensor with matching bands (sensor=..., bands=[...])"
            )

    # -- identity ---------------------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """sha256 of the weights file (plus the options that change the weights), or of the spec."""
        if self._fingerprint is None:
            src = dict(self._fp_source)
            if "file" in src:
                src["file"] = _sha256_path(Path(src["file"]))
            self._fingerprint = hashlib.sha256(json.dumps(src, sort_keys=True, default=str).encode()).hexdigest()
        return self._fingerprint

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Always stays in eval mode (frozen)."""
        return super().train(False)

    def extra_repr(self) -> str:
        return (
            f"spec={self.spec!r}, in_chans={self.in_chans}, patch_size={self.patch_size}, "
            f"embed_dim={self.embed_dim}, n_blocks={self.n_blocks}"
        )

    # -- input ------------------------------------------------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """Standardise reflectance-scaled input [B, C, H, W] or [C, H, W] with the backbone's mean/std."""
        c = x.shape[-3]
        if c != self.in_chans:
            raise InputError(
                f"input has {c} bands but backbone {self.spec} takes {self.in_chans}; select the matching bands or "
                "load the backbone with bands=[...] to adapt its patch embedding"
            )
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return (x.float() - mean) / std

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise InputError(f"expected an image batch [B, C, H, W], got shape {tuple(x.shape)}")
        _, c, h, w = x.shape
        if c != self.in_chans:
            raise InputError(
                f"input has {c} bands but backbone {self.spec} takes {self.in_chans}; select the matching bands or "
                "load the backbone with bands=[...] to adapt its patch embedding"
            )
        p = self.patch_size
        if h % p or w % p:
            raise InputError(f"image size {h}x{w} is not a multiple of the patch size {p}; crop or pad it")

    def _autocast(self, device: torch.device):
        amp = self.amp if self.amp is not None else device.type == "cuda"
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(amp))

    # -- features ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def features(
        self, x: Tensor, layers: str | int | Sequence[int] = "last", norm: bool = True
    ) -> tuple[list[Tensor], list[Tensor]]:
        """(patch maps [B, D, h, w], CLS tokens [B, D]) of the chosen blocks, float32; `x` already normalised."""
        self._check(x)
        idx = layer_indices(layers, self.n_blocks)
        device = next(self.model.parameters()).device
        x = x.to(device=device, dtype=torch.float32)
        with self._autocast(device):
            if self.kind == "geodino":
                outs = self.model.get_intermediate_layers(x, n=idx, reshape=True, return_class_token=True, norm=norm)
                maps = [m.float() for m, _ in outs]
                cls = [c.float() for _, c in outs]
            else:
                maps, cls = _timm_features(self.model, x, idx, norm)
        return maps, cls

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """CLS token of the last block [B, D] (input already normalised)."""
        return self.features(x, "last")[1][0]


# ----------------------------------------------------------------------------------------------------------------
# timm baselines
# ----------------------------------------------------------------------------------------------------------------


def timm_geometry(model: nn.Module) -> tuple[int, int, int, int]:
    """(patch size / output stride, feature width, in_chans, number of selectable blocks) of a timm model."""
    pe = getattr(model, "patch_embed", None)
    if pe is not None and hasattr(pe, "patch_size"):
        ps = pe.patch_size
        patch = int(ps[0] if isinstance(ps, tuple | list) else ps)
        n = len(model.blocks) if hasattr(model, "blocks") else len(model.feature_info)
        dim = int(getattr(model, "embed_dim", getattr(model, "num_features", 0)))
        in_chans = int(pe.proj.in_channels) if hasattr(pe, "proj") else int(model.pretrained_cfg.get("in_chans", 3))
        return patch, dim, in_chans, n
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ConfigError(f"timm model {type(model).__name__} exposes neither patch_embed nor feature_info")
    reductions = [int(f["reduction"]) for f in info]
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return reductions[-1], int(info[-1]["num_chs"]), int(first.in_channels), len(reductions)


def _timm_features(model: nn.Module, x: Tensor, idx: list[int], norm: bool) -> tuple[list[Tensor], list[Tensor]]:
    """Multi-layer features of any timm model through `forward_intermediates` (ViTs: prefix tokens give CLS;
    CNNs: CLS is the global average of the map)."""
    if not hasattr(model, "forward_intermediates"):
        raise ConfigError(f"timm model {type(model).__name__} has no forward_intermediates; choose another model")
    has_prefix = int(getattr(model, "num_prefix_tokens", 0) or 0) > 0
    kwargs: dict[str, Any] = {"indices": idx, "intermediates_only": True, "output_fmt": "NCHW"}
    if hasattr(model, "blocks"):
        kwargs["norm"] = norm
        if has_prefix:
            kwargs["return_prefix_tokens"] = True
    outs = model.forward_intermediates(x, **kwargs)
    maps, cls = [], []
    for o in outs:
        if isinstance(o, tuple):
            fmap, prefix = o
            maps.append(fmap.float())
            cls.append(prefix[:, 0].float())
        else:
            maps.append(o.float())
            cls.append(o.float().mean(dim=(2, 3)))
    return maps, cls


def build_timm(name: str, options: dict[str, str], in_chans: int | None, seed: int | None) -> nn.Module:
    import timm

    if not timm.list_models(name) and not timm.list_models(name.split(".")[0]):
        from geodino.errors import did_you_mean

        close = did_you_mean(name, timm.list_models(), n=3)
        raise ConfigError(f"unknown timm model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    pretrained = _as_bool(options.get("pretrained", "false"), "pretrained")
    kwargs: dict[str, Any] = {"pretrained": pretrained, "num_classes": 0}
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    for key in ("img_size",):
        if key in options:
            kwargs[key] = as_int(options[key], key)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = timm.create_model(name, dynamic_img_size=True, **kwargs)
    except TypeError:  # CNNs and others without a dynamic image size
        model = timm.create_model(name, **kwargs)
    except Exception as exc:
        if pretrained:
            raise CheckpointError(
                f"timm:{name} pretrained weights could not be fetched ({type(exc).__name__}); download them to the "
                "HF cache first or use pretrained=false"
            ) from exc
        raise
    return model


# ----------------------------------------------------------------------------------------------------------------
# normalisation
# ----------------------------------------------------------------------------------------------------------------


def _sensor_stats(
    sensor: Any, bands: list[str] | None, in_chans: int, spec: str, default: str | None
) -> tuple[Any, list[float], list[float], list[str] | None]:
    """(sensor object or name, mean, std, band names) for normalisation.

    Sensors come from `geodino.data.sensors.get_sensor`; without a sensor, 3-band backbones use the ImageNet
    statistics (SAT-493M for files whose name says sat493m) and others the identity (mean 0, std 1).
    """
    if sensor is None and default is not None and in_chans == 3:
        sensor = default
    if sensor is None:
        if in_chans == 3:
            return None, list(IMAGENET_MEAN), list(IMAGENET_STD), bands or ["R", "G", "B"]
        return None, [0.0] * in_chans, [1.0] * in_chans, bands
    try:
        from geodino.data.sensors import get_sensor
    except ImportError:  # the data part is optional for pure-model use: keep the built-in RGB statistics
        name = str(sensor).lower()
        if name in ("sat493m", "sat", "maxar") and in_chans == 3:
            return name, list(SAT493M_MEAN), list(SAT493M_STD), ["R", "G", "B"]
        if name in ("imagenet", "rgb", "web") and in_chans == 3:
            return name, list(IMAGENET_MEAN), list(IMAGENET_STD), ["R", "G", "B"]
        raise ConfigError(f"sensor {sensor!r} needs geodino.data.sensors, which is not available") from None
    s = get_sensor(sensor)
    if bands is not None and len(bands) == in_chans:
        try:
            s = s.select(bands)
        except InputError as exc:
            raise ConfigError(f"backbone {spec}: {exc}") from exc
    if s.n_bands != in_chans:
        raise ConfigError(
            f"sensor {s.name!r} has {s.n_bands} bands ({', '.join(s.bands)}) but backbone {spec} takes {in_chans}; "
            "pass bands=[...] naming the backbone's bands, or adapt the backbone with bands="
        )
    return s, list(s.mean), list(s.std), list(s.bands)


def _sha256_path(path: Path) -> str:
    """sha256 of a file, or of the files of a folder (names and contents)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------------------------


def load_backbone(
    spec: str | Path | nn.Module,
    *,
    bands: int | str | Sequence[str] | None = None,
    sensor: Any = None,
    device: str | torch.device = "cpu",
    fill: str | None = None,
    amp: bool | None = None,
) -> FrozenBackbone:
    """A frozen backbone from a spec (see the module docstring); `bands` names (or counts) the input bands and,
    for a checkpoint with other bands, adapts its patch embedding; `sensor` sets the normalisation."""
    if isinstance(spec, nn.Module):
        return _from_module(spec, bands=bands, sensor=sensor, device=device, amp=amp)
    kind, target, options = parse_spec(spec)
    spec_text = str(spec)
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
    seed = as_int(options.pop("seed"), "seed") if "seed" in options else None
    n_bands, names = _bands_option(bands)

    if kind == "arch":
        from geodino.models import build_model

        overrides = {k: parse_value(v) for k, v in options.items()}
        patch = as_int(str(overrides.pop("patch_size", 16)), "patch_size")
        in_chans = as_int(str(overrides.pop("in_chans", n_bands or 3)), "in_chans")
        if n_bands is not None and n_bands != in_chans:
            raise ConfigError(f"backbone spec {spec_text}: bands={n_bands} but in_chans={in_chans}")
        check_build_options({"patch_size": patch, "in_chans": in_chans, **overrides}, spec_text)
        if seed is not None:
            torch.manual_seed(seed)
        model = build_model(target, patch_size=patch, in_chans=in_chans, **overrides)
        s, mean, std, band_names = _sensor_stats(sensor, names, in_chans, spec_text, None)
        fb = FrozenBackbone(
            model, spec=spec_text, kind="geodino", mean=mean, std=std, bands=band_names, sensor=s, amp=amp,
            fingerprint_source={"spec": spec_text, "bands": names or n_bands, "seed": seed},
        )  # fmt: skip
        return fb.to(device)

    if kind == "timm":
        model = build_timm(target, options, n_bands, seed)
        in_chans = timm_geometry(model)[2]
        default_mean = list(model.pretrained_cfg.get("mean", IMAGENET_MEAN))
        default_std = list(model.pretrained_cfg.get("std", IMAGENET_STD))
        if sensor is None and in_chans == len(default_mean):
            s, mean, std, band_names = (
                None,
                default_mean,
                default_std,
                names or (["R", "G", "B"] if in_chans == 3 else None),
            )
        else:
            s, mean, std, band_names = _sensor_stats(sensor, names, in_chans, spec_text, None)
        fb = FrozenBackbone(
            model, spec=spec_text, kind="timm", mean=mean, std=std, bands=band_names, sensor=s, amp=amp,
            fingerprint_source={"spec": spec_text, "bands": names or n_bands, "seed": seed},
        )  # fmt: skip
        return fb.to(device)

    return _from_path(Path(target).expanduser(), spec_text, options, n_bands, names, sensor, fill, device, amp)


def _from_path(
    path: Path,
    spec_text: str,
    options: dict[str, str],
    n_bands: int | None,
    names: list[str] | None,
    sensor: Any,
    fill: str,
    device: str | torch.device,
    amp: bool | None,
) -> FrozenBackbone:
    from geodino.models.checkpoints import build_from_state, read_backbone_weights, resolve_bands
    from geodino.models.checkpoints.normalization import describe_normalization, select_normalization

    if not path.exists():
        hint = " (arch:NAME for a random backbone, timm:NAME for a timm model)" if ":" not in str(path) else ""
        raise CheckpointError(f"backbone checkpoint {path} not found{hint}")
    which = options.pop("which", "teacher")
    unknown = sorted(set(options))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} in backbone spec {spec_text}; checkpoint specs accept "
            "bands, sensor, fill, which"
        )
    weights = read_backbone_weights(path, which=which)
    state = weights.state
    config = weights.config or {}
    c = int(state["patch_embed.proj.weight"].shape[1])
    src_bands = config.get("bands") if isinstance(config.get("bands"), list) else None
    if src_bands is None and weights.normalization and weights.normalization.get("bands"):
        src_bands = list(weights.normalization["bands"])  # the bands the export records
    if src_bands is None and c == 3:
        src_bands = ["R", "G", "B"]
    lower = path.name.lower()
    default_sensor = config.get("sensor") or ("sat493m" if "sat493m" in lower else None)
    if default_sensor is None and c == 3 and "lvd1689m" in lower:
        default_sensor = "imagenet"
    adapted = False
    if n_bands is not None and n_bands != c:
        if names is None:
            raise CheckpointError(
                f"checkpoint {path} has {c} input bands but bands={n_bands} was requested; name the bands "
                f"(bands=B02,B03,...) to adapt its patch embedding from {src_bands or f'{c} unnamed bands'}"
            )
        state, _ = resolve_bands(
            state, names, src_bands=src_bands, sensor=sensor, fill=fill, source=path, check_sensor=False
        )
        adapted = True
    model = build_from_state(state, config, source=path)
    recorded = weights.normalization
    if recorded is not None and adapted:
        recorded = select_normalization(recorded, names or [])
    fp: dict[str, Any] = {"file": str(path), "which": which}
    if adapted:
        fp.update(bands=names, fill=fill)
    if sensor is None and recorded is not None and len(recorded["mean"]) == model.in_chans:
        band_names = names if names is not None and not recorded.get("bands") else recorded.get("bands") or names
        fb = FrozenBackbone(
            model, spec=spec_text, kind="geodino", mean=recorded["mean"], std=recorded["std"], bands=band_names,
            sensor=recorded.get("sensor") or None, amp=amp, fingerprint_source=fp,
        )  # fmt: skip
        fb.normalization = recorded
        fb.norm_source = f"recorded in {weights.normalization_from}: {describe_normalization(recorded)}"
        log.info("backbone %s: normalisation %s", spec_text, fb.norm_source)
        return fb.to(device)
    bands_for_stats = names if names is not None else (src_bands if not adapted else None)
    default = None if adapted else default_sensor
    s, mean, std, band_names = _sensor_stats(sensor, bands_for_stats, model.in_chans, spec_text, default)
    fb = FrozenBackbone(
        model, spec=spec_text, kind="geodino", mean=mean, std=std, bands=band_names, sensor=s, amp=amp,
        fingerprint_source=fp,
    )  # fmt: skip
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
        warnings.warn(
            f"backbone {spec_text} records no input normalisation{' ' + why if why else ''}: using {what}; pass "
            "the sensor it was trained with (load_backbone(..., sensor=NAME), the spec option ?sensor=NAME as in "
            f"--backbone '{path}?sensor=sentinel2_l2a', or backbone_sensor=NAME for probes)",
            stacklevel=3,
        )
    log.info("backbone %s: normalisation %s", spec_text, fb.norm_source)
    return fb.to(device)


def _from_module(
    model: nn.Module, *, bands: Any, sensor: Any, device: str | torch.device, amp: bool | None
) -> FrozenBackbone:
    """Wrap an in-memory DinoVisionTransformer (e.g. a just-trained teacher); fingerprint from its weights."""
    if not hasattr(model, "get_intermediate_layers"):
        raise ConfigError(f"{type(model).__name__} is not a DinoVisionTransformer; pass a spec string instead")
    _, names = _bands_option(bands)
    s, mean, std, band_names = _sensor_stats(sensor, names, int(model.in_chans), "<module>", None)
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    fb = FrozenBackbone(
        model, spec="<module>", kind="geodino", mean=mean, std=std, bands=band_names, sensor=s, amp=amp,
        fingerprint_source={"weights": h.hexdigest()},
    )  # fmt: skip
    return fb.to(device)
