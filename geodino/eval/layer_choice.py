"""Which backbone blocks a probe head reads: `resolve_layers` checks a layer choice against the backbone.

`LayerError` marks a choice this backbone cannot give; the suite runner checks every task for it before any runs.
Shared by the segmentation, canopy and detection probes and `geodino.eval.runner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geodino.errors import ConfigError, plural


class LayerError(ConfigError):
    """A head's layer choice that this backbone cannot give (four maps from fewer than four blocks, a block index
    past the last). The suite runner checks every task for it before any runs: it stops a run up front, and a
    `--compare` backbone skips the task instead (see `geodino.eval.runner.prepare_suite`)."""

    def __init__(self, message: str, reason: str, fix: str | Sequence[str], n_blocks: int):
        super().__init__(message)
        self.reason = reason  # what the head needs, without the backbone: 'canopy head=dpt needs four layers'
        # the config changes that together avoid it: ('head=linear',) or ('head=linear', 'layers=last')
        self.fixes: tuple[str, ...] = (fix,) if isinstance(fix, str) else tuple(fix)
        self.fix = self.fixes[0]
        self.n_blocks = n_blocks


def backbone_name(backbone: Any) -> str:
    """The backbone's spec for messages (its class name when it has none)."""
    return str(getattr(backbone, "spec", "") or type(backbone).__name__)


def blocks_text(n: int) -> str:
    return plural(n, "block")


def pangaea_layers(n_blocks: int) -> list[int]:
    """PANGAEA's four UPerNet blocks, mapped by depth: the last block of the first 4, 6, 8 and 12 twelfths of the
    depth (round half up), which gives its encoder configs' `output_layers` exactly, [3, 5, 7, 11] for 12 blocks
    (ViT-S/B) and [7, 11, 15, 23] for 24 (ViT-L); kept distinct for shallow backbones (5 blocks: [1, 2, 3, 4])."""
    idx = [max(int(k * n_blocks / 12 + 0.5) - 1, 0) for k in (4, 6, 8, 12)]
    for i in range(1, 4):
        idx[i] = max(idx[i], idx[i - 1] + 1)
    return idx


def resolve_layers(
    layers: str | Sequence[int],
    n_blocks: int,
    need_four: bool,
    *,
    what: str = "this probe",
    backbone: str = "in use",
    auto: bool = False,
) -> str | list[int]:
    """Validate a layer choice (`pangaea` becomes its block indices for this depth: `pangaea_layers`); dense
    multi-level heads need exactly four layers. `what` names the probe and head
    (`segmentation head=upernet`) and `backbone` the spec, for the messages. LayerError when the backbone has too
    few blocks for the choice; ConfigError when the choice itself is wrong. `auto`: `layers` is the head's default
    (segmentation's `layers: auto`), so the hint for a refused four-map head is `head=linear` alone."""
    if isinstance(layers, str):
        if layers not in ("last", "four_last", "four_even", "four_even_official", "pangaea"):
            raise ConfigError(
                f"{what}: layers={layers!r} must be last, four_last, four_even, four_even_official, pangaea or a "
                "list of block indices"
            )
        if need_four and layers == "last":
            raise ConfigError(
                f"{what}: layers='last' gives one map but this head needs four; use four_even or four_last"
            )
        # four_even* and pangaea pick four blocks spread over the depth: none exists under 4 blocks (four_last would
        # give one map per block, which a four-map head cannot take)
        if (need_four or layers in ("four_even", "four_even_official", "pangaea")) and n_blocks < 4:
            # the way out must run: a linear head on these same four blocks is refused too, so it also reads the
            # last block, unless the layers were the head's own default (`auto`: a linear head picks `last` itself)
            fixes = ("head=linear",) if need_four and auto else ("head=linear", "layers=last")
            fixes = fixes if need_four else ("layers=last",)
            raise LayerError(
                f"{what} on backbone {backbone}: layers={layers} needs four layers but the backbone has "
                f"{blocks_text(n_blocks)}; use {' with '.join(fixes)} or a backbone with at least 4 blocks",
                f"{what} needs four layers" if need_four else f"{what} reads layers={layers}, four blocks",
                fixes,
                n_blocks,
            )
        return pangaea_layers(n_blocks) if layers == "pangaea" else layers
    if isinstance(layers, int):  # features() reads an int as a count of last blocks, a list here names blocks
        raise ConfigError(
            f"{what}: layers={layers!r} is a bare number; list the blocks ([{layers}] is block {layers}) or use "
            "last, four_last, four_even"
        )
    from geodino.backbones.layers import block_list

    # block_list refuses 2.5, True, "a" in one line (int() made 2.5 block 2 and True block 1)
    idx = block_list(layers, "list block indices or use last, four_last, four_even")
    if not idx:
        raise ConfigError(f"{what}: layers=[] names no block; list block indices or use last, four_last, four_even")
    if need_four and len(idx) != 4:
        raise ConfigError(f"{what}: layers={idx} must list four blocks for this head (e.g. four_even)")
    if any(i < 0 or i >= n_blocks for i in idx):
        raise LayerError(
            f"{what}: layers={idx} outside the blocks 0..{n_blocks - 1} of backbone {backbone}; list blocks in "
            f"that range or use {'four_even' if need_four else 'last'}",
            f"{what} reads layers={idx}",
            "layers=four_even" if need_four else "layers=last",
            n_blocks,
        )
    return idx
