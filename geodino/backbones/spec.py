"""Backbone spec strings: `kind:target?key=value&...` parsed, and the typed reading of their option values."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from geodino.errors import ConfigError

DEFAULT_PATCH = 16  # the patch size of an `arch:` or `baseline:` spec without a patch_size option


def parse_spec(spec: str | Path) -> tuple[str, str, dict[str, str]]:
    """(kind, target, options) with kind in {'path', 'arch', 'timm', 'baseline'}; options from the `?a=1&b=2` tail."""
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
    if head.startswith("baseline:"):
        return "baseline", head[9:], options
    return "path", head, options


# the `?` options every spec kind shares (`spec_check._spec_options` takes them out) and the kinds each acts on: an
# option on another kind was read and dropped without a word (`arch:vit_small?subset=rescale` built the same model)
_WHERE: dict[str, tuple[tuple[str, ...], str]] = {
    "fill": (("path",), "how bands a checkpoint lacks are initialised when bands= adapts its patch embedding"),
    "subset": (("path",), "how a subset of a checkpoint's bands keeps its kernels when bands= adapts them"),
    "seed": (("arch", "timm"), "which random weights an arch: or timm: spec draws"),
}
_WHY_NOT = {
    "arch": "an arch: spec builds its patch embedding for its bands, with no weights to adapt",
    "timm": "a timm: spec builds its input layer for its bands (timm adapts pretrained weights its own way)",
    "baseline": "a baseline: spec has no weights",
    "path": "a checkpoint's weights come from its file",
    "module": "an in-memory model is used as it is",
}
TIMM_OPTIONS = ("pretrained", "img_size")  # `backbones.timm.build_timm` reads these; the shared ones besides
CHECKPOINT_OPTIONS = ("bands", "sensor", "fill", "subset", "which")  # what `load_path._from_path` reads of a spec


def check_kind_options(kind: str, options: dict[str, str], spec: str, passed: dict[str, Any] | None = None) -> None:
    """One line when a shared option (`?fill=`, `?subset=`, `?seed=`, or `fill=`/`subset=` passed to
    `load_backbone`, in `passed`) is given to a spec kind it does nothing for, naming where it applies; and, for a
    timm: spec or a checkpoint, when an option is not one its load reads (`timm:NAME?depth=1` built the full model,
    `geodino info FILE?depth=1` described the file as it is)."""
    for key, (kinds, what) in _WHERE.items():
        if kind in kinds or (key not in options and (passed or {}).get(key) is None):
            continue
        label = f"?{key}=" if key in options else f"{key}="
        where = " and ".join("checkpoint" if k == "path" else f"{k}:" for k in kinds)
        raise ConfigError(
            f"backbone spec {spec}: {label} applies to {where} specs only ({what}); {_WHY_NOT[kind]}, "
            "so it would be ignored"
        )
    if kind == "timm":
        if "seed" in options and as_bool(options.get("pretrained", "false"), "pretrained"):
            raise ConfigError(
                f"backbone spec {spec}: ?seed= draws random weights, but pretrained=true loads timm's; drop one "
                "(every seed gave the same model under another fingerprint)"
            )
        unknown = sorted(set(options) - {"bands", "sensor", *_WHERE, *TIMM_OPTIONS})
        if unknown:
            n = len(unknown)
            raise ConfigError(
                f"{n} unknown option{'s' if n > 1 else ''} in backbone spec {spec}: {', '.join(unknown)}; timm: "
                f"specs accept bands, sensor, seed, {', '.join(TIMM_OPTIONS)} (the architecture is the timm name's)"
            )
    if kind == "path":
        unknown = sorted(set(options) - set(CHECKPOINT_OPTIONS))
        if unknown:
            n = len(unknown)
            raise ConfigError(
                f"{n} unknown option{'s' if n > 1 else ''} in backbone spec {spec}: {', '.join(unknown)}; "
                f"checkpoint specs accept {', '.join(CHECKPOINT_OPTIONS)}"
            )


def stated_patch_size(spec: str | Path) -> int | None:
    """The patch size a spec's text gives without building anything: an `arch:` or `baseline:` spec's patch_size
    option, else `DEFAULT_PATCH`; None for a checkpoint or timm model (only its weights or timm's model say) and for
    a spec that does not parse (its load names the problem)."""
    try:
        kind, _, options = parse_spec(spec)
        patch = int(options.get("patch_size", DEFAULT_PATCH)) if kind in ("arch", "baseline") else 0
    except (ConfigError, ValueError):
        return None
    return patch if patch >= 1 else None


def as_bool(value: str, key: str) -> bool:
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


def missing_checkpoint(path: Path) -> str:
    """One line for a backbone spec naming no file: another tool's prefix (`local-dir:`, `hf-hub:`), a hub id
    (`facebook/dinov3-...`) or a mistyped path, each with what to pass instead (it said only "not found")."""
    text = str(path)
    from geodino.models.checkpoints.folders import BACKBONE_SUFFIXES, foreign_prefix

    if foreign := foreign_prefix(text):
        return f"backbone checkpoint {text} not found: {foreign}"
    if ":" in text:
        return f"backbone checkpoint {text} not found"
    hint = " (arch:NAME for a random backbone, timm:NAME for a timm model)"
    from geodino.errors import did_you_mean
    from geodino.models.archs import ARCHS

    if arch := did_you_mean(text, ARCHS):
        hint = f" (did you mean arch:{arch[0]}, a random backbone? timm:NAME for a timm model)"
    parts = Path(text).expanduser().parts
    parent = Path(text).expanduser().parent
    if parent.is_dir() and str(parent) != ".":  # a mistyped file name: what the folder holds
        from geodino.models.checkpoints.folders import backbone_files

        found = [p.name for p in backbone_files(parent)]
        if found:
            hint += f"; {parent} holds {', '.join(found[:5])}{', ...' if len(found) > 5 else ''}"
    elif len(parts) == 2 and Path(text).suffix not in BACKBONE_SUFFIXES:  # `org/model`, as the hub names models
        hint += (
            f"; if {text} is a Hugging Face hub id, geodino reads local files only: download it (hf download "
            f"{text} --local-dir DIR) and pass DIR"
        )
    return f"backbone checkpoint {text} not found{hint}"
