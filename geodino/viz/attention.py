"""CLS-to-patch attention of one block, its attention-mass mask, and patch-to-patch similarity, for any backbone.

What DINO's first figure shows: the attention of the CLS query over the patch tokens in the last block, per head
(storage/register tokens and the CLS column excluded, as the papers show it), the mean over heads, and the mask
of the most-attended patches that together hold a share of the attention mass (DINO uses 60 %).

How the weights are reached without touching the fused path:
- geodino backbones (official, geodino and HF checkpoints, `arch:`): for the one forward pass, the chosen block's
  `attn.compute_attention` is shadowed by an instance attribute that records its (qkv, rope) arguments and calls
  the original, so the SDPA kernel and the block's output stay bit-identical; the CLS row of softmax(q kᵀ/√d) is
  then computed here from the recorded q and k (RoPE applied with the same `rope_qk` the model uses).
- timm ViT/EVA backbones (`attention_timm`): timm's `Attention` / `EvaAttention` keep their fused kernel; q and k
  are read at `q_norm` / `k_norm` and the CLS row computed here (no [heads, N, N] matrix in memory). Other
  modules with a `fused_attn` switch keep their fused branch too, the q and k it hands `scaled_dot_product_attention`
  recorded; only one whose fused branch never calls it runs its eager path (a second pass, the row read at
  `attn_drop`). Models without that switch, CNNs and models without a CLS token give a one-line InputError.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodino.config import whole_number
from geodino.errors import ConfigError, InputError, plural
from geodino.viz.attention_input import (
    check_band_order,
    crop_note,
    is_image,
    read_input,
    window_point,
)
from geodino.viz.attention_outputs import (
    check_output_folder,
    write_attention,
)
from geodino.viz.attention_timm import needs_eager, timm_capture, timm_cls_attention

__all__ = [
    "AttentionMaps",
    "attention_maps",
    "check_mass",
    "check_output_folder",
    "crop_note",
    "is_image",
    "mass_mask",
    "read_input",
    "visualize_attention",
    "write_attention",
]


# ------------------------------------------------------------------------------------------------------------------
# attention weights
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class AttentionMaps:
    """Per-head CLS-to-patch attention [heads, h, w] (softmax probabilities over all tokens, patch part only),
    their mean over the selected heads, the attention-mass mask of the mean and of each head, and optionally a
    cosine-similarity map [h, w] for the patch at `point` (col, row in image pixels). `valid` [h, w] marks the
    patches holding at least one valid pixel (None: all); the others are nodata in the PNGs and the COG."""

    heads: np.ndarray
    head_ids: list[int]
    mean: np.ndarray
    mask: np.ndarray
    head_masks: np.ndarray
    layer: int
    mass: float
    patch_size: int
    image_size: tuple[int, int]
    similarity: np.ndarray | None = None
    point: tuple[int, int] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    valid: np.ndarray | None = None

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.mean.shape[0]), int(self.mean.shape[1])


def check_mass(mass: float) -> None:
    """Refuse a mass share outside (0, 1], naming the CLI flag and the Python keyword (one check, run before
    the backbone is loaded, so a typo costs no forward pass)."""
    try:
        ok = 0.0 < float(mass) <= 1.0  # NaN is refused too
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"--mass {mass} (mass={mass!r} in Python): the attention mass share the mask keeps must be in (0, 1]; "
            "DINO uses 0.6"
        )


def mass_mask(attn: np.ndarray, mass: float = 0.6, valid: np.ndarray | None = None) -> np.ndarray:
    """The smallest set of highest-attention cells whose share of the total attention reaches `mass` (DINO's
    thresholded self-attention). Works on [..., h, w]; cells are ranked by value over the last two axes.

    `valid` [h, w] (None: all): the cells that hold data. The others are never kept and their attention is left out
    of the total, so the mask holds `mass` of the attention the pictures show (a nodata margin drew most of a
    random backbone's mask, invisible in the PNGs and NaN in the COG). A cell of exactly zero attention (a float32
    softmax underflows below ~1e-45) adds nothing to the mass, so it is never kept: `mass` 1 keeps every valid cell
    with positive attention, as DINO's `cumsum > 1 - mass` does (the zeros sort first and their cumulative share is
    0), not every cell; without the rounding tolerance, cells under 1e-12 of the total were dropped there."""
    check_mass(mass)
    a = np.asarray(attn, dtype=np.float64)
    ok = np.ones(a.shape[-2:], bool) if valid is None else np.asarray(valid, bool)
    if ok.shape != a.shape[-2:]:
        raise ValueError(f"valid {ok.shape} does not match the attention grid {a.shape[-2:]}")
    a = np.where(ok, a, 0.0)
    flat = a.reshape(*a.shape[:-2], -1)
    order = np.argsort(-flat, axis=-1, kind="stable")
    vals = np.take_along_axis(flat, order, axis=-1)
    total = np.maximum(vals.sum(axis=-1, keepdims=True), 1e-30)
    before = np.cumsum(vals, axis=-1) / total - vals / total  # share held by the cells ranked above each cell
    keep_sorted = before < mass - 1e-12
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    keep = keep.reshape(a.shape)
    if float(mass) >= 1.0:
        keep[...] = True  # every cell with mass, whatever the rounding of the cumulative share
    return keep & ok & (a > 0)


@contextmanager
def _geodino_capture(model: Any, layer: int, store: dict[str, Any]):
    """Record the (qkv, rope) of block `layer`'s attention for one pass; the fused computation is untouched."""
    attn = model.blocks[layer].attn
    shadowed = attn.__dict__.get("compute_attention")  # another wrapper already in place (kept, and restored)
    original = attn.compute_attention

    def spy(qkv: Any, rope: Any = None) -> Any:
        store["qkv"], store["rope"] = qkv.detach(), rope
        return original(qkv, rope)

    attn.compute_attention = spy  # instance attribute shadows the method for this pass only
    try:
        yield attn
    finally:
        if shadowed is not None:
            attn.compute_attention = shadowed
        else:
            del attn.compute_attention


@contextmanager
def _eager(backbone: Any):
    """The backbone's eager geodino ViT, as `backbone.model` for the block: a fast path (`FastViT`, put there by
    `geodino.inference.accelerate`) has no attention modules to read, so the eager model `accelerate` keeps is put
    back for the pass and the fast path after (a caller's accelerated backbone stays accelerated)."""
    from geodino.models.frozen import FastViT

    model = backbone.model
    if not isinstance(model, FastViT):
        yield model
        return
    eager = backbone.__dict__.get("_eager_model")
    if eager is None:
        raise InputError(
            f"backbone {backbone.spec} runs a fast path without its eager model, which attention maps need; "
            "load it again (load_backbone) or accelerate it with geodino.inference.accelerate"
        )
    backbone.model = eager
    try:
        yield eager
    finally:
        backbone.model = model


def _geodino_cls_attention(attn: Any, store: dict[str, Any], n_prefix: int) -> Any:
    """softmax(q_cls kᵀ / √d) over all tokens from the recorded qkv -> [B, heads, N - n_prefix] (patches only)."""
    import torch

    from geodino.models.layers.rope import rope_qk

    qkv = store["qkv"]
    B, N, _ = qkv.shape
    t = qkv.view(B, N, 3, attn.num_heads, attn.head_dim)
    if store["rope"] is not None:
        sin, cos = store["rope"]
        qk = rope_qk(t[:, :, :2], sin[:, None, None, :], cos[:, None, None, :])
        q, k = qk[:, :, 0], qk[:, :, 1]
    else:
        q, k = t[:, :, 0], t[:, :, 1]
    logits = torch.einsum("bhd,bnhd->bhn", q[:, 0].float(), k.float()) / math.sqrt(attn.head_dim)
    return logits.softmax(dim=-1)[:, :, n_prefix:]


PROGRESS_TOKENS = 4096
"""Patch count from which the forward pass shows a progress bar over its blocks (a 1024 x 1024 px input at patch
16; the 4096 x 4096 px a run accepts is 65536 tokens, minutes per block for a ViT-L on CPU, silent before)."""


@contextmanager
def _progress(model: Any, layer: int, n_tokens: int):
    """A tqdm bar (stderr) advanced by each block up to `layer` of the one forward pass, for inputs of at least
    `PROGRESS_TOKENS` patches; smaller passes (seconds) print nothing."""
    blocks = getattr(model, "blocks", None)
    if n_tokens < PROGRESS_TOKENS or blocks is None:
        yield
        return
    from geodino.progress import progress_bar

    bar = progress_bar(total=layer + 1, desc=f"attention forward ({n_tokens} patches)", unit="block", leave=False)

    def step(*_: Any) -> None:  # returns None: a forward hook's return value replaces the module's output
        bar.update(1)

    # each block's MLP: geodino blocks run `forward_list` (a block's own forward hook never fires), timm's forward
    handles = [getattr(b, "mlp", b).register_forward_hook(step) for b in list(blocks)[: layer + 1]]
    try:
        yield
    finally:
        for hd in handles:
            hd.remove()
        bar.close()


def _layer_index(layer: int, n_blocks: int) -> int:
    layer = whole_number(layer, "layer", -1)  # layer="x" was a raw ValueError of int()
    if not -n_blocks <= layer < n_blocks:
        raise InputError(
            f"--layer {layer} (layer= in Python) is out of range: the backbone has {plural(n_blocks, 'block')} "
            f"(0..{n_blocks - 1}, -1 last)"
        )
    return int(layer) % n_blocks


def _check_point(
    point: tuple[float, float], sample: dict[str, Any], valid: np.ndarray, size: tuple[int, int], p: int
) -> None:
    """A `point` (col, row; pixels of the image or window read) outside the pixels, in the part cut off to whole
    patches, or in a patch without a valid pixel, refused in one line before the forward pass (it came after it)."""
    col, row = math.floor(point[0]), math.floor(point[1])  # int() would take -0.5 for column 0
    (W, H), h, w = size, size[1] // p, size[0] // p
    what = "window" if sample.get("window") is not None else "image"
    if not (0 <= col < W and 0 <= row < H):
        raise InputError(
            f"--point (col {col}, row {row}) is outside the {W} x {H} px {what} (width x height); give one inside it "
            "(point= in Python)"
        )
    if not (col < w * p and row < h * p):
        raise InputError(
            f"--point (col {col}, row {row}) is in the part cut off: the {W} x {H} px {what} is read as "
            f"{w * p} x {h * p} px (whole {p} px patches from the top-left); give a point with col < {w * p} and "
            f"row < {h * p} (point= in Python)"
        )
    r0, c0 = row // p * p, col // p * p
    if not valid[r0 : r0 + p, c0 : c0 + p].any():  # its token is the nodata fill's: a map of nothing
        raise InputError(
            f"--point (col {col}, row {row}) of the {what} is in a {p} x {p} px patch without a valid pixel "
            "(nodata), so its similarity map would compare the nodata fill; give a point on the data (point= in Python)"
        )


def _known_heads(backbone: Any, idx: int) -> int | None:
    """The head count of block `idx` where the model says it without a forward pass (geodino and timm ViTs:
    `blocks[idx].attn.num_heads`), else None (checked after the pass)."""
    model = backbone.__dict__.get("_eager_model") or getattr(backbone, "model", None)
    try:
        n = model.blocks[idx].attn.num_heads  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError):
        return None
    return int(n) if isinstance(n, int) and n > 0 else None


def _head_list(heads: Any) -> list[int]:
    """`heads` as head indices: one whole number is that head (heads=0 was a raw TypeError), else each item of the
    sequence; anything else is one ConfigError naming `heads`."""
    if isinstance(heads, int | np.integer) and not isinstance(heads, bool):
        return [int(heads)]
    if isinstance(heads, str | bytes) or not isinstance(heads, Sequence | np.ndarray):
        raise ConfigError(f"heads must be head indices (e.g. heads=[0, 2], or heads=0 for one), got {heads!r}")
    return [whole_number(i, "heads", 0) for i in heads]


def _check_heads(heads: Sequence[int] | int | None, n_heads: int | None, idx: int) -> list[int]:
    """`heads` as a list of head indices (all when None), refused in one line when one repeats or is not among the
    block's `n_heads` (unknown: only repeats are checked)."""
    head_ids = list(range(n_heads or 0)) if heads is None else _head_list(heads)
    twice = sorted({i for i in head_ids if head_ids.count(i) > 1})
    if twice:
        raise InputError(f"--heads {head_ids} (heads= in Python) names head {twice[0]} twice; give each head once")
    if n_heads is None:
        return head_ids
    bad = [i for i in head_ids if not 0 <= i < n_heads]
    if bad or not head_ids:
        raise InputError(
            f"--heads {head_ids} (heads= in Python): the backbone's block {idx} has heads 0..{n_heads - 1}"
        )
    return head_ids


def attention_maps(
    backbone: Any,
    sample: dict[str, Any] | np.ndarray,
    *,
    layer: int = -1,
    heads: Sequence[int] | int | None = None,
    mass: float = 0.6,
    point: tuple[int, int] | None = None,
) -> AttentionMaps:
    """CLS-to-patch attention of block `layer` for one image (a `read_input` sample, or a reflectance array
    [C,H,W]); the image is cropped to whole patches from the top-left. `point` (col, row) in pixels adds the
    cosine similarity of that patch's (normalised) token to every patch token of the same block. `backbone` is a
    loaded backbone or a spec string (loaded on CPU). `layer`: the block (negative from the end); `heads`: the heads
    to show (None: all; one number: that head); `mass`: the share of attention mass the mask keeps (DINO: 0.6).
    Returns an `AttentionMaps` of numpy arrays on the patch grid (`heads` [n, h, w], `mean`, `mask`, `similarity`
    [h, w] or None)."""
    import torch

    check_mass(mass)
    if isinstance(backbone, str | Path):
        from geodino.backbones import load_backbone

        backbone = load_backbone(str(backbone))

    if isinstance(sample, np.ndarray):
        sample = {"image": sample, "valid": np.ones(sample.shape[1:], bool)}
    check_band_order(sample, backbone)  # its bands in another order than the backbone's: one line, not a map
    image = np.asarray(sample["image"], dtype=np.float32)
    if image.ndim != 3:
        raise InputError(f"expected an image [C, H, W], got shape {image.shape}")
    p = int(backbone.patch_size)
    H, W = image.shape[1:]
    h, w = H // p, W // p
    if h == 0 or w == 0:
        raise InputError(f"image is {W}x{H} px, smaller than one {p}x{p} patch; give a larger image or window")
    image = image[:, : h * p, : w * p]
    valid = np.asarray(sample.get("valid", np.ones((H, W), bool)))[: h * p, : w * p]
    if not valid.any():  # maps of nothing: every picture blank, the COG all NaN
        what = "window" if sample.get("window") is not None else "image"
        part = f" in its {w * p} x {h * p} px read as whole {p} px patches" if (h * p, w * p) != (H, W) else ""
        raise InputError(
            f"the {W} x {H} px {what} of {sample.get('path') or 'the input'} has no valid pixel{part} (all nodata or "
            "masked), so its attention maps would show nothing; pick a --window over the data (window= in Python)"
        )
    idx = _layer_index(layer, int(backbone.n_blocks))
    # the checks that need no forward pass come before it (a ViT-L over a large window takes minutes)
    if point is not None:
        _check_point(point, sample, valid, (W, H), p)
    _check_heads(heads, _known_heads(backbone, idx), idx)
    x = backbone.normalize(torch.from_numpy(np.ascontiguousarray(image)))[None]
    x = torch.where(torch.from_numpy(valid)[None, None], x, torch.zeros(()))  # nodata -> the band mean
    store: dict[str, Any] = {}
    if backbone.kind == "geodino":
        with _eager(backbone) as model, _geodino_capture(model, idx, store) as attn, _progress(model, idx, h * w):
            maps, _ = backbone.features(x, layers=[idx])
        weights = _geodino_cls_attention(attn, store, int(model.n_prefix_tokens))
        n_heads = int(attn.num_heads)
    else:
        model = backbone.model
        with timm_capture(model, idx, backbone.spec, store) as attn, _progress(model, idx, h * w):
            maps, _ = backbone.features(x, layers=[idx])
        if needs_eager(store):  # a fused branch without scaled_dot_product_attention: its eager path, once more
            store = {}
            with timm_capture(model, idx, backbone.spec, store, eager=True) as attn, _progress(model, idx, h * w):
                maps, _ = backbone.features(x, layers=[idx])
        n_prefix = int(getattr(model, "num_prefix_tokens", 1))
        weights = timm_cls_attention(attn, store, backbone.spec, idx)[:, :, n_prefix:]
        n_heads = int(weights.shape[1])
    if weights.shape[-1] != h * w:
        raise InputError(f"backbone {backbone.spec}: {weights.shape[-1]} patch tokens for a {h}x{w} patch grid")
    all_heads = weights[0].float().reshape(n_heads, h, w).cpu().numpy()
    head_ids = _check_heads(heads, n_heads, idx)
    sel = all_heads[head_ids]
    mean = sel.mean(axis=0)
    sim = None
    if point is not None:
        col, row = math.floor(point[0]), math.floor(point[1])  # int() would take -0.5 for column 0
        feats = torch.nn.functional.normalize(maps[0][0].float(), dim=0)  # [D, h, w]
        # unit vectors' dot products, clamped: float32 rounding gave 1.0000002 at the query cell itself
        sim = torch.einsum("d,dhw->hw", feats[:, row // p, col // p], feats).clamp(-1.0, 1.0).cpu().numpy()
    patch_valid = np.asarray(valid.reshape(h, p, w, p).any(axis=(1, 3)))  # a patch with one valid pixel shows data
    mask = mass_mask(mean, mass, patch_valid)  # of the patches with data: the mask the pictures show
    info = {
        "spec": backbone.spec,
        "n_heads": n_heads,
        "kept_share": float(mask[patch_valid].mean()),
        "valid_patches": int(patch_valid.sum()),
    }
    if (h * p, w * p) != (H, W):
        info["cropped_from"] = (H, W)
    return AttentionMaps(
        heads=sel,
        head_ids=head_ids,
        mean=mean,
        mask=mask,
        head_masks=mass_mask(sel, mass, patch_valid),
        layer=idx,
        mass=float(mass),
        patch_size=p,
        image_size=(h * p, w * p),
        similarity=sim,
        point=None if point is None else (math.floor(point[0]), math.floor(point[1])),
        info=info,
        valid=None if patch_valid.all() else patch_valid,
    )


def visualize_attention(
    path: str | Path,
    backbone: Any,
    out_dir: str | Path,
    *,
    layer: int = -1,
    heads: Sequence[int] | int | None = None,
    mass: float = 0.6,
    point: tuple[int, int] | None = None,
    sensor: Any = None,
    bands: Sequence[str] | None = None,
    window: Sequence[int] | None = None,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Path]:
    """`geodino viz attention`: read `path`, load `backbone` (a spec or a FrozenBackbone), write the maps (an
    `out_dir` that holds earlier maps is refused before any work unless `overwrite`). The other arguments are
    `read_input`'s and `attention_maps`'; `point` is (col, row) in the file's pixels. Returns `write_attention`'s
    {name: path} of the files written."""
    check_mass(mass)
    check_output_folder(out_dir, overwrite=overwrite)
    if isinstance(backbone, str | Path):
        from geodino.backbones import load_backbone

        backbone = load_backbone(str(backbone), device=device)
    sample = read_input(path, sensor=sensor, bands=bands, window=window, backbone=backbone)
    if sample.get("sensor_note"):
        print(sample["sensor_note"], file=sys.stderr)
    at = window_point(point, window, path) if point is not None else None
    maps = attention_maps(backbone, sample, layer=layer, heads=heads, mass=mass, point=at)
    note = crop_note(maps, sample)
    if note:
        print(note, file=sys.stderr)
    return write_attention(maps, sample, out_dir, overwrite=overwrite)
