"""Activation checkpointing of the student's transformer blocks: recompute activations in backward instead of
keeping them, so larger models or batches fit in device memory.

Modes (`trainer.activation_checkpointing` for pretraining, `train.activation_checkpointing` for distillation):

- `off`: every activation is kept (the default);
- `selective`: the official DINOv3 policy (`train.checkpointing`): the outputs of attention (and of bias-free
  matrix multiplies and fp8 scaled ones) are kept, the rest of each block (its linear layers, norms, GELU,
  LayerScale, RoPE) is recomputed in backward;
- `full`: only each block's input is kept and the whole block is recomputed (`train.checkpointing_full`).

As the official code, it applies to the trained student's backbone blocks only (teachers run without gradients), and
before `torch.compile` and FSDP2 (official order: checkpointing, compile, shard). The official code replaces each
block by a wrapper module, which renames every parameter (`_checkpoint_wrapped_module.`); here the block's
`forward_list` and `forward` are wrapped in place (instance attributes), so parameter names, checkpoints, EMA pairing
and FSDP2's method hooks stay as they are. Randomness inside a block (drop path) is replayed exactly in the
recomputation (`preserve_rng_state`), so gradients equal those of the run without checkpointing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.utils.checkpoint as tuc  # called as tuc.checkpoint: one attribute lookup, which torch.compile traces
from torch import nn

from geodino.errors import ConfigError

MODES = ("off", "selective", "full")


def check_mode(mode: Any, key: str) -> str:
    """The mode named by `mode` (one of MODES), else a ConfigError naming `key`. YAML reads a bare `off` as false,
    so false reads as `off`, and true as `selective` (the official `train.checkpointing: true`)."""
    text = str(mode).strip().lower()
    text = {"false": "off", "true": "selective"}.get(text, text)
    if text not in MODES:
        raise ConfigError(f"{key}={mode!r} is not one of {', '.join(MODES)} (off keeps every activation)")
    return text


def saved_ops() -> set[Any]:
    """The ops whose outputs `selective` keeps: the official list (mm, scaled mm, flash and memory-efficient SDPA,
    reduce-scatter) plus the cuDNN and CPU kernels of the same attention, which SDPA picks on recent GPUs and on CPU.
    As in the official code, linear layers with a bias run as `addmm` and are recomputed, so outside fp8 training
    `selective` keeps the attention outputs and recomputes the rest of each block (measured: benchmarks/
    activation_checkpointing.py; keeping `addmm` outputs too saved no memory over `off` on a ViT-S SSL step)."""
    aten = torch.ops.aten
    names = (
        "mm",
        "_scaled_mm",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
    )
    ops = {getattr(aten, n).default for n in names if hasattr(aten, n)}
    c10d = getattr(torch.ops, "_c10d_functional", None)
    if c10d is not None and hasattr(c10d, "reduce_scatter_tensor"):
        ops.add(c10d.reduce_scatter_tensor.default)
    return ops


def _context_fn(mode: str) -> Callable[[], Any] | None:
    if mode != "selective":
        return None
    from torch.utils.checkpoint import create_selective_checkpoint_contexts

    return functools.partial(create_selective_checkpoint_contexts, sorted(saved_ops(), key=str))


class _Checkpointed:
    """A block method run under `torch.utils.checkpoint` when gradients are on (plain call otherwise).

    A deep copy of the block (an EMA copy) gets a wrapper bound to the copy: `copy.deepcopy` rebinds bound methods
    and `owner` through its memo (tested), so the copy runs its own weights."""

    def __init__(self, owner: nn.Module, inner: Callable[..., Any], mode: str) -> None:
        self.owner, self.inner, self.mode = owner, inner, mode
        self.context_fn = _context_fn(mode)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return self.inner(*args, **kwargs)
        extra: dict[str, Any] = {"context_fn": self.context_fn} if self.context_fn is not None else {}
        return tuc.checkpoint(self.inner, *args, use_reentrant=False, preserve_rng_state=True, **extra, **kwargs)


def apply_activation_checkpointing(blocks: Iterable[nn.Module], mode: str) -> int:
    """Wrap `forward_list` and `forward` of each block in place for `mode`; returns how many blocks were wrapped
    (0 for `off`, or when they are already wrapped)."""
    mode = check_mode(mode, "activation_checkpointing")
    if mode == "off":
        return 0
    n = 0
    for blk in blocks:
        if isinstance(blk.__dict__.get("forward"), _Checkpointed):
            continue
        for name in ("forward_list", "forward"):
            if hasattr(type(blk), name):
                setattr(blk, name, _Checkpointed(blk, getattr(type(blk), name).__get__(blk), mode))
        n += 1
    return n


def checkpointing_mode(blocks: Iterable[nn.Module]) -> str:
    """The mode the blocks run with (`off` when none is wrapped): what the run logs and tests read."""
    modes = {getattr(b.__dict__.get("forward"), "mode", "off") for b in blocks}
    return modes.pop() if len(modes) == 1 else "mixed"
