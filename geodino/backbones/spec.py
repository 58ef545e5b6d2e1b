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
