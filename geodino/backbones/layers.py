"""Layer sets: which blocks' features a frozen backbone returns (names, a count of last blocks, or indices)."""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from typing import Any

from geodino.errors import ConfigError, plural
from geodino.models.caller import user_stacklevel
from geodino.user_keys import user_key

LAYER_SETS = ("last", "four_last", "four_even", "four_even_official")


def _as_index(value: Any) -> int | None:
    """`value` as a Python int when it is an integer (int, numpy or one-element torch integer), else None. bool is
    not one: `layers=True` read as 1 last block was a silent typo."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _lenient_index(value: str | float) -> int | None:
    """A list entry written as text ("3", as a YAML or CLI value may be) or an integral float (3.0): the block it
    names, as before; None for anything else (2.5 was truncated to block 2)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return int(value.strip())
    except ValueError:
        return None


def block_list(layers: Any, usage: str) -> list[int]:
    """The block indices a list names (unchecked against a depth; negative count from the end): integers (numpy or
    torch ones too), digit text ("3", as a YAML or CLI value may be) or integral floats (3.0). Anything else (2.5,
    a bool, "a", a non-iterable) is one ConfigError naming `layers` and the value; `usage` says what to pass."""
    try:
        items = list(layers)
    except TypeError:
        raise ConfigError(f"layers={layers!r} ({type(layers).__name__}) is not valid; {usage}") from None
    out = []
    for i in items:
        k = _as_index(i) if not isinstance(i, str | float) else _lenient_index(i)
        if k is None:
            raise ConfigError(f"layers={layers!r}: block index {i!r} is not an integer; {usage}")
        out.append(k)
    return out


def even_blocks(n_blocks: int) -> list[int]:
    """`four_even`: four blocks evenly spaced over the depth, the last block the last of them: block
    round(k * n_blocks / 4) - 1 for k = 1..4 (halves up). Every quarter of the depth when 4 divides it (the official
    `i * (n_blocks // 4) - 1`: ViT-S/B [2, 5, 8, 11], ViT-L [5, 11, 17, 23], 7B [9, 19, 29, 39]); depth 6 gives
    [1, 2, 4, 5], where the official formula gives [0, 1, 2, 3] (`four_even_official` keeps that). Fewer than four
    blocks cannot give four: one ConfigError line."""
    _need_four("four_even", n_blocks)
    return [(k * n_blocks + 2) // 4 - 1 for k in range(1, 5)]


def official_even_blocks(n_blocks: int) -> list[int]:
    """`four_even_official`: the official evaluation's FOUR_EVEN_INTERVALS exactly, `i * (n_blocks // 4) - 1` for
    i = 1..4, forced to [4, 11, 17, 23] for 24 blocks (its ViT-L quirk)."""
    _need_four("four_even_official", n_blocks)
    return [4, 11, 17, 23] if n_blocks == 24 else [i * (n_blocks // 4) - 1 for i in range(1, 5)]


def _need_four(name: str, n_blocks: int) -> None:
    if n_blocks < 4:
        raise ConfigError(
            f"layers={name} needs four blocks but the backbone has {plural(n_blocks, 'block')}; "
            f"pass last, four_last or block indices (0..{n_blocks - 1})"
        )


def _warn_short(name: str, n_blocks: int) -> None:
    """One line when `four_last` meets a backbone of fewer than four blocks: it gives every block (fewer than four
    maps), which changed the feature width of probes and feature rasters without a word (the official
    `get_intermediate_layers(n=4)` fails on such a backbone). A warning, not an error: `four_last` is the probes'
    default layer set, and the blocks it gives are the last ones there are."""
    which = "block 0" if n_blocks == 1 else f"blocks 0..{n_blocks - 1}"
    key = user_key("layers")  # `tasks.<name>.features.layers` inside a probe suite's task
    warnings.warn(
        f"{key}={name} on a backbone with {plural(n_blocks, 'block')} gives {plural(n_blocks, 'map')} ({which}), "
        f"not 4; pass {key}=last, a count of last blocks ({n_blocks} for all of them) or block indices to choose "
        "them without this warning",
        stacklevel=user_stacklevel(),
    )


class LayerIndexError(ConfigError):
    """A block index past the backbone's depth. `detail` says which without naming a key, for a caller whose user
    wrote another one (embed's `layers=... (--layers)`) to name it instead."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def backbone_layer_indices(layers: str | int | Sequence[int], backbone: Any) -> list[int]:
    """`layer_indices` on `backbone`'s depth (`n_blocks`), the rule every caller holding a backbone uses. The
    short-backbone warning is for a depth the user chose (a 2-block ViT asked for `four_last`: a deeper one exists);
    a backbone whose block count is fixed by construction says so with `fixed_depth = True` (the colour baseline's
    one block), and is not warned about: there is no deeper one to choose."""
    n_blocks = int(getattr(backbone, "n_blocks", 1) or 1)
    return layer_indices(layers, n_blocks, warn_short=not getattr(backbone, "fixed_depth", False))


def layer_indices(layers: str | int | Sequence[int], n_blocks: int, *, warn_short: bool = True) -> list[int]:
    """Block indices for a layer set name, a count of last blocks, or explicit indices (negative allowed), in block
    order without repeats: the order `get_intermediate_layers` returns them in (official semantics), so that a
    feature raster's band labels and a probe's concatenation follow the outputs whatever order a user listed.
    Anything else (a float, a bool, a list holding a non-integer) is one ConfigError naming `layers` and the value.
    `warn_short=False`: no warning for `four_last` on fewer than four blocks (a backbone whose depth is fixed by
    construction: `backbone_layer_indices` reads it; or a lookup that only names the blocks while the run itself
    warns)."""
    usage = f"use one of {', '.join(LAYER_SETS)}, a count of last blocks or a list of block indices"
    if isinstance(layers, str):
        key = layers.strip().lower()
        if key == "last":
            return [n_blocks - 1]
        if key == "four_last":
            if n_blocks < 4 and warn_short:
                _warn_short("four_last", n_blocks)
            return list(range(max(0, n_blocks - 4), n_blocks))
        if key == "four_even":
            return even_blocks(n_blocks)
        if key == "four_even_official":
            return official_even_blocks(n_blocks)
        raise ConfigError(f"unknown {user_key('layers')} {layers!r}; {usage}")
    count = _as_index(layers)
    if count is not None:
        if not 1 <= count <= n_blocks:
            raise ConfigError(
                f"{user_key('layers')}={count} asks for the last {count} blocks but the backbone has "
                f"{plural(n_blocks, 'block')}; "
                f"pass a count from 1 to {n_blocks}, block indices (0..{n_blocks - 1}) or one of "
                f"{', '.join(LAYER_SETS)}"
            )
        return list(range(n_blocks - count, n_blocks))
    out = []
    for k in block_list(layers, usage):
        j = k + n_blocks if k < 0 else k
        if not 0 <= j < n_blocks:
            detail = f"layer index {k} out of range for a backbone with {plural(n_blocks, 'block')} (0..{n_blocks - 1})"
            raise LayerIndexError(f"{user_key('layers')}={layers!r}: {detail}", detail)
        out.append(j)
    if not out:
        key = user_key("layers")
        raise ConfigError(f"{key} is an empty list; pass block indices or one of " + ", ".join(LAYER_SETS))
    return sorted(set(out))
