"""Layer sets: which blocks' features a frozen backbone returns (names, a count of last blocks, or indices)."""

from __future__ import annotations

from collections.abc import Sequence

from geodino.errors import ConfigError, plural

LAYER_SETS = ("last", "four_last", "four_even", "four_even_official")


def layer_indices(layers: str | int | Sequence[int], n_blocks: int) -> list[int]:
    """Block indices for a layer set name, a count of last blocks, or explicit indices (negative allowed), in block
    order without repeats: the order `get_intermediate_layers` returns them in (official semantics), so that a
    feature raster's band labels and a probe's concatenation follow the outputs whatever order a user listed."""
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
            raise ConfigError(f"layers={layers} last blocks requested from a backbone with {plural(n_blocks, 'block')}")
        return list(range(n_blocks - layers, n_blocks))
    out = []
    for i in layers:
        j = int(i) + n_blocks if int(i) < 0 else int(i)
        if not 0 <= j < n_blocks:
            raise ConfigError(
                f"layer index {i} out of range for a backbone with {plural(n_blocks, 'block')} (0..{n_blocks - 1})"
            )
        out.append(j)
    if not out:
        raise ConfigError("layers is an empty list; pass block indices or one of " + ", ".join(LAYER_SETS))
    return sorted(set(out))
