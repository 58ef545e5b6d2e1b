"""`build_model`: a named (or custom) DinoVisionTransformer with official init; `count_parameters`."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch

from geodino.models.archs import ARCHS, COMMON, arch_kwargs
from geodino.models.vit import DinoVisionTransformer

__all__ = ["DinoVisionTransformer", "build_model", "count_parameters"]

_VALID_KEYS = tuple(p for p in inspect.signature(DinoVisionTransformer.__init__).parameters if p != "self")


def build_model(
    arch: str | None = "vit_small",
    *,
    patch_size: int = 16,
    in_chans: int = 3,
    device: str | torch.device | None = None,
    **overrides: Any,
) -> DinoVisionTransformer:
    """Build a named architecture (`geodino.models.archs.ARCHS`) with official init.

    `overrides` are any `DinoVisionTransformer` kwargs (e.g. `depth=2`, `drop_path_rate=0.1`,
    `untie_global_and_local_cls_norm=True`); `model.config` holds the full kwargs, so
    `build_model(**model.config)` rebuilds the same architecture. `device="meta"` builds without allocating
    (then `model.to_empty(device=...)` and `model.init_weights()`).
    """
    from geodino.errors import ConfigError

    if arch is None:  # a custom size: every dimension comes from the overrides (e.g. an inferred config)
        needed = [k for k in ("embed_dim", "depth", "num_heads") if k not in overrides]
        if needed:
            raise ConfigError(
                f"no architecture given and no {', '.join(needed)}; valid architectures: {', '.join(ARCHS)}"
            )
        kwargs = dict(COMMON)
    else:
        kwargs = arch_kwargs(arch)
    unknown = sorted(set(overrides) - set(_VALID_KEYS))
    if unknown:
        from geodino.errors import did_you_mean, plural

        hints = []
        for k in unknown:
            close = did_you_mean(k, _VALID_KEYS)
            hints.append(f"{k} (did you mean {close[0]}?)" if close else k)
        raise ConfigError(
            f"{plural(len(hints), 'unknown backbone option')} for {arch}: {', '.join(hints)}; "
            f"valid: {', '.join(_VALID_KEYS)}"
        )
    overrides.pop("arch", None)
    kwargs.update(overrides)
    kwargs.update(patch_size=int(patch_size), in_chans=int(in_chans), arch=arch)
    if kwargs["embed_dim"] % kwargs["num_heads"] or (kwargs["embed_dim"] // kwargs["num_heads"]) % 4:
        raise ConfigError(
            f"embed_dim {kwargs['embed_dim']} with num_heads {kwargs['num_heads']}: the head dim must be an integer "
            f"multiple of 4 (RoPE)"
        )
    _check_values(kwargs, arch)
    if device is None:
        return DinoVisionTransformer(**kwargs)
    with torch.device(device):
        model = DinoVisionTransformer(**kwargs)
    return model


def _check_values(kwargs: dict[str, Any], arch: str | None) -> None:
    """One ConfigError line naming a build option whose value the model cannot take: a name outside its choices
    (`ffn_layer=foo` was a KeyError traceback, `rope_sampling=x` a ValueError), or a number out of range
    (`ffn_ratio=-1` failed in torch with a negative dimension; `n_storage_tokens=-1` and `drop_path_rate=2` built)."""
    from geodino.errors import ConfigError
    from geodino.models.layers import FFN_LAYERS, NORM_LAYERS
    from geodino.models.layers.rope import DTYPES

    choices = {
        "ffn_layer": tuple(FFN_LAYERS),
        "norm_layer": tuple(NORM_LAYERS),
        "pos_embed_rope_dtype": tuple(DTYPES),
        "pos_embed_rope_normalize_coords": ("min", "max", "separate"),
        "rope_sampling": ("per_block", "per_forward"),
    }
    for key, allowed in choices.items():
        value = kwargs.get(key)
        if isinstance(value, str | None) and value not in allowed:
            raise ConfigError(f"backbone option {key}={value!r} for {arch}: use one of {', '.join(allowed)}")
    ranges = {  # key: (lowest, highest, whether the lowest is allowed)
        "ffn_ratio": (0.0, math.inf, False),
        "ffn_hidden_dim": (0, math.inf, True),  # 0: from ffn_ratio, as None
        "n_storage_tokens": (0, math.inf, True),
        "drop_path_rate": (0.0, 1.0, True),
    }
    for key, (low, high, closed) in ranges.items():
        value = kwargs.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not (low <= value if closed else low < value) or value >= high:
            where = (
                f"above {low:g}"
                if not closed
                else f"at least {low:g}"
                if high == math.inf
                else f"in [{low:g}, {high:g})"
            )
            raise ConfigError(f"backbone option {key}={value!r} for {arch}: must be {where}")


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())
