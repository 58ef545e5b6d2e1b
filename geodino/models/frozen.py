"""Fast inference path for a frozen DinoVisionTransformer: prepared weights, optional bf16 / int8, torch.compile.

`FastViT(model)` reads the weights of a `DinoVisionTransformer` once and runs an inference-only forward with the
same outputs (`forward_features`, `get_intermediate_layers`, official semantics; no masks, no training):

- weights prepared once (`geodino.models.fast_core`): key-bias mask and LayerScale folded into the projections,
  SwiGLU's input projections fused; `dtype=torch.bfloat16` stores the matmul weights in bf16;
- `compile=True` runs the forward through `torch.compile` (inductor; on CPU with weight freezing, which constant-
  folds RoPE tables and prepacks weights for oneDNN). Shapes are static: each new (batch, H, W) is compiled once
  (the warm-up), and a batch smaller than one already compiled for the same tile size is zero-padded to it instead
  of compiling again (a partial last batch costs a padded forward, not a compile), or on CPU, when it fills less
  than `PAD_MIN_SHARE` of it, runs uncompiled;
- `dtype="int8"`: opt-in dynamic int8 quantisation of the projections (torch.ao, eager; fidelity measured by
  the feature cosine to float32, see docs/fast_inference.md);
- float32 on CUDA GPUs with TF32 tensor cores: the projections run as "3xTF32" (`geodino.models.tf32x3`);
  `GEODINO_FAST=float32-ieee` keeps plain float32 products;
- float32 on CPU: the projections run through oneDNN with the FFN's GELU fused (`geodino.models.onednn_linear`);
  `GEODINO_FAST=float32-mkl` keeps the MKL products inductor packs by itself.

`fast_path(model, device=..., mode=...)` chooses the path (see `choose_path`, `geodino.models.fast_choice`) and
returns a `FastViT`, or the model unchanged when the fast path is off: `mode="off"` or the environment variable
`GEODINO_FAST=0`. The names of those modules that callers and tests use are re-exported here.

Hand-written rather than a library because the official layout (storage tokens, RoPE on patch tokens only,
masked k-bias, untied norms) is what must be reproduced; `torch.compile` does the kernel fusion.
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from geodino.errors import ConfigError, InputError
from geodino.models.fast_choice import ENV_SWITCH as ENV_SWITCH  # re-exported: geodino.inference imports it
from geodino.models.fast_choice import MODES, FastPath, choose_path, env_mode, fast_mode
from geodino.models.fast_core import _Core
from geodino.models.layers.patch_embed import check_image_batch
from geodino.models.onednn_linear import use_onednn_linears
from geodino.models.tf32x3 import _split_tf32x3, tf32_matmuls, tf32_round
from geodino.models.tf32x3 import _Tf32x3Linear as _Tf32x3Linear  # re-exported: tests use frozen._Tf32x3Linear
from geodino.models.vit import block_indices, layer_outputs

if TYPE_CHECKING:
    from geodino.models.vit import DinoVisionTransformer

__all__ = [
    "MODES",
    "FastPath",
    "FastViT",
    "choose_path",
    "env_mode",
    "fast_mode",
    "fast_path",
    "tf32_matmuls",
    "tf32_round",
]


# A batch smaller than the compiled one runs that graph zero-padded when it fills at least this share of it, else
# through the prepared weights without the compiler: padding pays when the share exceeds compiled / uncompiled time.
# CPU, ViT-S float32 at embed's 512 px tiles: the uncompiled prepared weights run at eager's speed
# (benchmarks/backbone.py --no-compile, batch 4: 2.32 against 2.42 img/s) and the compiled forward at 1.11-1.31x
# eager (backbone.py batch 4 and 8: 1.11, 1.18; profile_forward.py: 1.31), so the break-even share is 0.76-0.90.
# CUDA: always padded (compiled bf16 is ~2x eager, and a small batch leaves the GPU mostly idle anyway).
PAD_MIN_SHARE: dict[str, float] = {"cpu": 0.85, "cuda": 0.0}


class FastViT(nn.Module):
    """Inference-only stand-in for a DinoVisionTransformer (same attributes, `forward_features` and
    `get_intermediate_layers`); outputs are float32 whatever the internal dtype."""

    # copied from the model in __init__ (declared: set through setattr)
    patch_size: int
    embed_dim: int
    in_chans: int
    n_blocks: int
    num_heads: int
    n_storage_tokens: int
    config: dict[str, Any]

    def __init__(self, model: nn.Module, path: FastPath | None = None) -> None:
        super().__init__()
        if not hasattr(model, "blocks") or not hasattr(model, "rope_embed"):
            raise ConfigError(f"{type(model).__name__} is not a geodino DinoVisionTransformer; the fast path needs one")
        # checked by its attributes, not its class: a wrapper that forwards them (torch.compile's) is accepted too
        vit = cast("DinoVisionTransformer", model)
        self.path = path or FastPath(True)
        if self.path.tf32x3 and self.path.dtype != "float32":
            raise ConfigError(f"3xTF32 projections are a float32 path; {self.path.dtype} weights cannot use them")
        dtype = torch.bfloat16 if self.path.dtype == "bfloat16" else torch.float32
        for name in ("patch_size", "embed_dim", "in_chans", "n_blocks", "num_heads", "n_storage_tokens", "config"):
            setattr(self, name, getattr(model, name))
        self.num_features = self.embed_dim
        self.n_prefix_tokens = int(vit.n_prefix_tokens)
        # the check alone, not `model.patch_embed.check_input`: a bound method kept the eager patch embedding (and
        # its weights) alive after a caller dropped the eager model (the distillation teacher)
        self._check_input = functools.partial(
            check_image_batch, in_chans=int(vit.patch_embed.in_chans), patch=int(vit.patch_embed.patch_size[0])
        )
        with torch.no_grad():
            self.core = _Core(vit, dtype).eval()
        if self.path.dtype == "int8":
            self.core = _quantize_int8(self.core)
        elif self.path.tf32x3:
            self.core = _split_tf32x3(self.core)
        elif self.path.onednn:
            self.core = use_onednn_linears(self.core)
        self._compiled: Any = None
        self._rope_cache: dict[tuple[int, int, torch.device], tuple[Tensor, Tensor]] = {}
        self._graphs: set[tuple[Any, ...]] = set()  # (batch, H, W, take, norm) of every compiled call made
        self.eval()

    @property
    def path_name(self) -> str:
        return self.path.name

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawned workers, torch.save) without its compiled graphs, which cannot be pickled: the copy
        compiles again on its first call."""
        return {**super().__getstate__(), "_compiled": None, "_graphs": set()}

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Its own prepared weights (`core.*`) only: an eager model's state_dict is refused in one line saying how
        to load it (it failed with torch's list of every missing `core.*` key)."""
        if not any(str(k).startswith("core.") for k in state_dict):
            raise ConfigError(
                "this FastViT holds weights prepared from an eager DinoVisionTransformer; load the state_dict into the "
                "eager model and prepare again: accelerate(backbone, mode='off'), backbone.model.load_state_dict(sd), "
                "accelerate(backbone) (or fast_path(model) for a bare model)"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def train(self, mode: bool = True) -> FastViT:
        """Always in eval mode (inference only)."""
        return super().train(False)

    def _run(
        self,
        x: Tensor,
        take: tuple[int, ...],
        norm: bool,
        new_graph: bool = False,
        masks: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        """The forward: a compiled graph that serves the call (`_graph_batch`), else a new one when no larger graph
        of the call exists (or `new_graph`: the warm-up), else the prepared weights uncompiled (a partial batch too
        small to pad). Never under autocast: the path's weights carry its dtype (a float32 path called inside a
        caller's bf16 autocast, such as a bf16-mixed training step, would otherwise compute in bf16). Returns (the
        `take` blocks' outputs, the last block's output); with `take` given, blocks after its last are not run (see
        `fast_core._Core.forward`) and the second is that block's output."""
        self._check_input(x)
        x = x.float()
        if masks is not None:
            n = (x.shape[-2] // self.patch_size) * (x.shape[-1] // self.patch_size)
            masks = masks.reshape(x.shape[0], -1).bool()
            if masks.shape[1] != n:
                raise InputError(f"masks have {masks.shape[1]} entries per image but the input has {n} patches")
        with torch.autocast(x.device.type, enabled=False):
            if self.path.tf32x3:
                with tf32_matmuls(x.device):
                    return self._run_prepared(x, take, norm, new_graph, masks)
            return self._run_prepared(x, take, norm, new_graph, masks)

    def _run_prepared(
        self, x: Tensor, take: tuple[int, ...], norm: bool, new_graph: bool, masks: Tensor | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """`_run` after the input check, under the matmul precision the path needs."""
        sin, cos = self._rope(x)
        if not self.path.compile:
            with torch.no_grad():
                return self.core(x, take, norm, sin, cos, masks)
        if self._compiled is None:
            self._compiled = _compile(self.core, x.device)
        B, _, H, W = x.shape
        masked = masks is not None
        run_b = self._graph_batch(B, H, W, take, norm, masked)
        if run_b is None:
            if not new_graph and self._graph_batches(B, H, W, take, norm, masked):
                # well short of the compiled batch: its own tiles through the prepared weights cost less than a
                # padded compiled forward, and compiling its shape costs a warm-up
                with torch.no_grad():
                    return self.core(x, take, norm, sin, cos, masks)
            run_b = B
        pad = run_b > B
        outside = not torch.is_inference_mode_enabled()
        # the graph always runs in inference mode on an inference tensor: dynamo guards on the input's dispatch
        # keys, so a warm-up on a plain tensor then calls under torch.inference_mode() (or the reverse) compiled twice
        with torch.inference_mode():
            if pad:  # reuse the graph compiled for the larger batch rather than compiling (minutes) for this one
                x = torch.cat([x, x.new_zeros((run_b - B, *x.shape[1:]))])
                masks = None if masks is None else torch.cat([masks, masks.new_zeros((run_b - B, masks.shape[1]))])
            else:
                x = x if x.is_inference() else x.clone()
                masks = masks if masks is None or masks.is_inference() else masks.clone()
            taken, last = self._compiled(x, take, norm, sin, cos, masks)
        self._graphs.add((run_b, H, W, take, norm, masked))
        if pad:
            taken, last = [t[:B] for t in taken], last[:B]
        if outside:  # plain tensors for callers outside inference mode (they may update them in place)
            taken, last = [t.clone() for t in taken], last.clone()
        return taken, last

    def _rope(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """RoPE tables for the patch grid of `x`, computed once per (H, W, device) and kept."""
        p = self.patch_size
        key = (x.shape[-2] // p, x.shape[-1] // p, x.device)
        if key not in self._rope_cache:
            with torch.inference_mode():  # the same kind of tensor whichever mode the first call ran in
                self._rope_cache[key] = self.core.rope_tables(key[0], key[1])
        return self._rope_cache[key]

    def warmup(
        self,
        batch: int,
        height: int,
        width: int,
        layers: Sequence[int] | None = None,
        norm: bool = True,
        masked: bool = False,
    ) -> bool:
        """Compile for a call shape ahead of the timed work (`layers`, `norm` and whether masks are passed as the
        caller will call: they are part of the graph). Nothing to do, and False, when a graph that serves the call
        exists already (this shape, or a larger batch of it that `_run` pads to, see `PAD_MIN_SHARE`) or the path is
        not compiled: a second job on the same `FastViT` must not pay a forward for nothing (on a 16-tile raster that
        was a fifth of the run)."""
        # checked as `get_intermediate_layers` checks them: a block past the depth (or -1) compiled a graph, tens of
        # seconds, that no call could ever run. An empty list is `forward_features`' call (no blocks taken).
        if layers is None:
            take: tuple[int, ...] = (self.n_blocks - 1,)
        else:
            take = tuple(sorted(set(block_indices(list(layers), self.n_blocks)))) if len(layers) else ()
        if not self.path.compile or self.compiled_for(batch, height, width, take, norm, masked):
            return False
        x = torch.zeros(batch, self.in_chans, height, width, device=self.core.prefix.device)
        n = (height // self.patch_size) * (width // self.patch_size)
        masks = torch.zeros(batch, n, dtype=torch.bool, device=x.device) if masked else None
        self._run(x, take, norm, new_graph=True, masks=masks)
        return True

    def compiled_for(
        self, batch: int, height: int, width: int, take: tuple[int, ...], norm: bool, masked: bool = False
    ) -> bool:
        """Whether a call of this shape runs a graph already compiled (its own or, padded, a larger batch)."""
        return self._graph_batch(batch, height, width, take, norm, masked) is not None

    def _graph_batches(
        self, batch: int, height: int, width: int, take: tuple[int, ...], norm: bool, masked: bool = False
    ) -> list[int]:
        """Compiled batches >= `batch` for the same tile shape, layers, norm and masking."""
        want = (height, width, take, norm, masked)
        return [b for b, *rest in self._graphs if tuple(rest) == want and b >= batch]

    def _graph_batch(
        self, batch: int, height: int, width: int, take: tuple[int, ...], norm: bool, masked: bool = False
    ) -> int | None:
        """The compiled batch a call runs at: the smallest one >= `batch` that it fills at least `PAD_MIN_SHARE` of
        (zero-padded to it), or None when no compiled graph serves it."""
        share = PAD_MIN_SHARE.get(self.core.prefix.device.type, 0.0)
        sizes = [b for b in self._graph_batches(batch, height, width, take, norm, masked) if batch >= share * b]
        return min(sizes, default=None)

    @torch.no_grad()
    def forward_features(
        self, x: Tensor | Sequence[Tensor], masks: Tensor | Sequence[Tensor | None] | None = None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Official `forward_features`: one batch -> a dict; a list of crop groups (sizes may differ) -> one dict
        per group, `masks` None or one entry per group (masked patches become the mask token, as the teacher-head
        warm-up asks; each group runs on its own, which is what the official list forward computes)."""
        if not isinstance(x, Tensor):
            groups = list(x)
            group_masks = [None] * len(groups) if masks is None else list(masks)
            if len(group_masks) != len(groups):
                raise InputError(f"got {len(groups)} crop groups but {len(group_masks)} mask entries")
            return [self._features(g, m) for g, m in zip(groups, group_masks)]
        if masks is not None and not isinstance(masks, Tensor):
            raise InputError("one image batch takes one mask tensor (or None), not a list")
        return self._features(x, masks)

    def _features(self, x: Tensor, masks: Tensor | None) -> dict[str, Any]:
        """The official output dict of one batch."""
        _, last = self._run(x, (), False, masks=masks)
        normed = self.core.apply_norm(last)
        n = self.n_prefix_tokens
        return {
            "x_norm_clstoken": normed[:, 0],
            "x_storage_tokens": normed[:, 1:n],
            "x_norm_patchtokens": normed[:, n:],
            "x_prenorm": last,
            "masks": masks,
        }

    def forward(self, x: Tensor) -> Tensor:
        return self._features(x, None)["x_norm_clstoken"]  # forward_features of one batch

    @torch.no_grad()
    def get_intermediate_layers(
        self,
        x: Tensor,
        *,
        n: int | Sequence[int] = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        return_extra_tokens: bool = False,
        norm: bool = True,
    ) -> tuple[Any, ...]:
        """As `DinoVisionTransformer.get_intermediate_layers` (official semantics and return form: the blocks in
        block order, each once, whatever order `n` lists them in)."""
        taken, _ = self._run(x, tuple(sorted(set(block_indices(n, self.n_blocks)))), norm)
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size) if reshape else None
        return layer_outputs(taken, self.n_prefix_tokens, grid, return_class_token, return_extra_tokens)


def _compile(core: nn.Module, device: torch.device) -> Any:
    """torch.compile of the core, static shapes. CPU: inductor weight freezing (constant folding of the RoPE tables
    and weight prepacking for MKL / oneDNN; needs no-grad, which `_run` guarantees). CUDA: default inductor options
    (SDPA keeps its flash / memory-efficient kernels, nothing CPU-specific applies).

    Freezing is set with `torch._inductor.config.patch` around every call (a call may compile a new shape), not with
    `torch.compile(options={"freezing": True})`: torch 2.14 silently ignores it there (the graph kept plain `addmm`
    on unfrozen weights; measured in docs/fast_inference.md)."""
    compiled = torch.compile(_own_forward(core), dynamic=False)
    if device.type != "cpu":
        return compiled

    def run(*args: Any) -> Any:
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return compiled(*args)

    run.compiled = compiled  # type: ignore[attr-defined]
    return run


def _own_forward(core: nn.Module) -> Any:
    """`core.forward` bound through a copy of its code object. Dynamo keeps compiled graphs, and counts them against
    its recompile limit (8), per code object: with the class's one `forward` shared by every FastViT, the ninth
    backbone or tile shape of a process silently ran uncompiled while reporting a compiled path."""
    fn = type(core).forward
    own = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    return types.MethodType(own, core)


def _quantize_int8(core: _Core) -> _Core:
    """Dynamic int8 quantisation of every projection (weights int8 per tensor, activations quantised per call)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated in favour of torchao (not a dependency)
        warnings.simplefilter("ignore")
        return cast(_Core, quantize_dynamic(core, {nn.Linear}, dtype=torch.qint8))  # a copy, Linears swapped


def fast_path(
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    mode: str = "auto",
    compile: bool | None = None,
    amp: bool | None = None,
) -> nn.Module:
    """`model` behind the path `choose_path` picks: a `FastViT` (attribute `path_name`), or `model` itself when the
    fast path is off or the model is not a geodino ViT in eval use (e.g. a timm baseline)."""
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    path = choose_path(device, mode, compile, amp)
    if not path.enabled or not hasattr(model, "rope_embed"):
        return model
    return FastViT(model, path).to(device)


def path_name(model: nn.Module) -> str:
    """'fast-…' for a FastViT, 'eager' otherwise (what embed and probes print and record)."""
    return getattr(model, "path_name", "eager")
