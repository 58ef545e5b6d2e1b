"""CLS-to-patch attention of one block, its attention-mass mask, and patch-to-patch similarity, for any backbone.

What DINO's first figure shows: the attention of the CLS query over the patch tokens in the last block, per head
(storage/register tokens and the CLS column excluded, as the papers show it), the mean over heads, and the mask
of the most-attended patches that together hold a share of the attention mass (DINO uses 60 %).

How the weights are reached without touching the fused path:
- geodino backbones (official, geodino and HF checkpoints, `arch:`): for the one forward pass, the chosen block's
  `attn.compute_attention` is shadowed by an instance attribute that records its (qkv, rope) arguments and calls
  the original, so the SDPA kernel and the block's output stay bit-identical; the CLS row of softmax(q kᵀ/√d) is
  then computed here from the recorded q and k (RoPE applied with the same `rope_qk` the model uses).
- timm ViT/EVA backbones: their attention modules have a `fused_attn` switch; it is turned off for the pass and
  the softmax output is read at `attn_drop` (an identity in eval mode). Models without that switch, CNNs and
  models without a CLS token give a one-line InputError.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import InputError, plural

__all__ = [
    "AttentionMaps",
    "attention_maps",
    "check_output_folder",
    "crop_note",
    "mass_mask",
    "read_input",
    "visualize_attention",
    "write_attention",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIZ_HINTS = {"bands": "--bands", "band_names": None, "sensor": "--sensor", "skip": None}
"""How input messages name the settings: viz attention's flags (it has no --band-names or --on-error)."""
MAX_PIXELS = 4096 * 4096  # a whole-scene forward beyond this needs a --window (attention is quadratic in tokens)


# ------------------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------------------
def read_input(
    path: str | Path,
    *,
    sensor: Any = None,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    window: Sequence[int] | None = None,
) -> dict[str, Any]:
    """An image or raster as a sample: reflectance `image` float32 [C,H,W], `valid` [H,W], `sensor`, and for a
    georeferenced raster `crs` and `transform` (of the window); `window` is (col, row, width, height) in pixels."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist; give an image (.jpg/.png) or a raster (.tif/.vrt)")
    if path.is_dir():
        raise InputError(
            f"input {path} is a folder; viz attention takes one image (.jpg/.png) or raster (.tif/.vrt) file: "
            "pass one of its files"
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from geodino.data.images import decode_image, match_bit_depth
        from geodino.data.sensors import get_sensor

        try:
            data = decode_image(path.read_bytes(), path.name)
        except Exception as exc:
            raise InputError(f"image {path} cannot be decoded ({type(exc).__name__}); is it a complete image?") from exc
        s = get_sensor(sensor or "imagenet")
        data = match_bit_depth(data, str(path), s)
        if s.n_bands != data.shape[0]:
            raise InputError(f"image {path} has {plural(data.shape[0], 'band')} but sensor {s.name!r} has {s.n_bands}")
        if bands:  # by the sensor's names or aliases (R/G/B, red/green/blue), as for rasters
            data = data[s.band_indices(list(bands))]
            s = s.select(list(bands))
        if window is not None:
            c, r, w, h = _check_window(window, data.shape[2], data.shape[1], path)
            data = data[:, r : r + h, c : c + w]
        _check_size(path, data.shape[2], data.shape[1], "image")
        image = s.to_reflectance(data.astype(np.float32))
        return {
            "window": list(window) if window is not None else None,
            "image": image,
            "valid": np.ones(image.shape[1:], bool),
            "sensor": s,
            "crs": None,
            "transform": None,
            "path": str(path),
            "bands": list(s.bands),
        }
    from geodino.data.archive import RasterArchive

    archive = RasterArchive(
        [str(path)],
        sensor=sensor,
        bands=bands,
        band_names=band_names,
        require_crs=False,
        progress=False,
        hints=VIZ_HINTS,
    )
    scene = archive.scenes[0]
    c, r, w, h = (
        (0, 0, scene.width, scene.height) if window is None else _check_window(window, scene.width, scene.height, path)
    )
    _check_size(path, w, h, "raster")
    sample = archive.sample(0, c, r, w, h)
    sample["sensor"] = archive.sensor
    sample["window"] = [c, r, w, h] if window is not None else None
    if not scene.crs:
        sample["crs"], sample["transform"] = None, None
    return sample


def crop_note(maps: AttentionMaps, sample: dict[str, Any]) -> str | None:
    """The line saying that the image was cut to whole patches (None when nothing was cut), printed once per run:
    the maps, the PNGs and the COG cover the cropped image only."""
    if "cropped_from" not in maps.info:
        return None
    H, W = maps.info["cropped_from"]
    h, w = maps.image_size
    what = "window" if sample.get("window") is not None else "image"
    cut = " and ".join(plural(n, unit) for n, unit in ((W - w, "column"), (H - h, "row")) if n)
    return (
        f"geodino: the {W} x {H} px {what} is read as {w} x {h} px (width x height; whole {maps.patch_size} px "
        f"patches from the top-left), leaving out its last {cut}"
    )


def window_point(point: Sequence[int], window: Sequence[int] | None, path: str | Path) -> tuple[int, int]:
    """A `--point` in pixels of the input file as pixels of the window that was read (the image the maps cover)."""
    col, row = int(point[0]), int(point[1])
    if window is None:
        return col, row
    c, r, w, h = (int(v) for v in window)
    if not (c <= col < c + w and r <= row < r + h):
        raise InputError(
            f"--point {col} {row} (pixels of {path}) is outside --window {c} {r} {w} {h}; give a point inside the "
            "window, in the file's pixels"
        )
    return col - c, row - r


def _check_size(path: Path, w: int, h: int, kind: str) -> None:
    """Attention over every patch pair grows with the pixel count squared: large inputs need a window."""
    if w * h > MAX_PIXELS:
        raise InputError(
            f"{kind} {path} is {w}x{h} px; attention over a whole scene this large needs too much memory: pick a "
            "part with --window COL ROW WIDTH HEIGHT"
        )


def _check_window(window: Sequence[int], width: int, height: int, path: Path) -> tuple[int, int, int, int]:
    if len(window) != 4:
        raise InputError(f"--window takes 4 numbers COL ROW WIDTH HEIGHT, got {list(window)}")
    c, r, w, h = (int(v) for v in window)
    if c < 0 or r < 0 or w <= 0 or h <= 0 or c + w > width or r + h > height:
        raise InputError(f"window {c} {r} {w} {h} (col row width height) is not inside {path} ({width}x{height} px)")
    return c, r, w, h


# ------------------------------------------------------------------------------------------------------------------
# attention weights
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class AttentionMaps:
    """Per-head CLS-to-patch attention [heads, h, w] (softmax probabilities over all tokens, patch part only),
    their mean over the selected heads, the attention-mass mask of the mean and of each head, and optionally a
    cosine-similarity map [h, w] for the patch at `point` (col, row in image pixels)."""

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

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.mean.shape[0]), int(self.mean.shape[1])


def mass_mask(attn: np.ndarray, mass: float = 0.6) -> np.ndarray:
    """The smallest set of highest-attention cells whose share of the total attention reaches `mass` (DINO's
    thresholded self-attention). Works on [..., h, w]; cells are ranked by value over the last two axes."""
    if not 0.0 < mass <= 1.0:
        raise InputError(f"attention mass share must be in (0, 1], got {mass}")
    a = np.asarray(attn, dtype=np.float64)
    flat = a.reshape(*a.shape[:-2], -1)
    order = np.argsort(-flat, axis=-1, kind="stable")
    vals = np.take_along_axis(flat, order, axis=-1)
    total = np.maximum(vals.sum(axis=-1, keepdims=True), 1e-30)
    before = np.cumsum(vals, axis=-1) / total - vals / total  # share held by the cells ranked above each cell
    keep_sorted = before < mass - 1e-12
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return keep.reshape(a.shape)


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


@contextmanager
def _timm_capture(model: Any, layer: int, spec: str, store: dict[str, Any]):
    """Turn off the fused kernel of one timm attention module and read its softmax output at `attn_drop`."""
    blocks = getattr(model, "blocks", None)
    attn = getattr(blocks[layer], "attn", None) if blocks is not None else None
    if attn is None:
        raise InputError(
            f"backbone {spec} ({type(model).__name__}) has no attention blocks, so it has no attention maps; use a "
            "ViT: a geodino, official or HF checkpoint, or a timm ViT/EVA"
        )
    if not hasattr(attn, "fused_attn") or not hasattr(attn, "attn_drop"):
        raise InputError(
            f"backbone {spec}: {type(attn).__name__} computes attention in a fused kernel and exposes no attention "
            "weights; use a geodino, official or HF checkpoint, or a timm ViT/EVA"
        )
    if getattr(model, "cls_token", None) is None:
        raise InputError(f"backbone {spec} has no CLS token, so there is no CLS-to-patch attention to show")
    fused = attn.fused_attn
    handle = attn.attn_drop.register_forward_hook(lambda _m, _i, out: store.__setitem__("weights", out.detach()))
    attn.fused_attn = False
    try:
        yield attn
    finally:
        attn.fused_attn = fused
        handle.remove()


def _layer_index(layer: int, n_blocks: int) -> int:
    if not -n_blocks <= int(layer) < n_blocks:
        raise InputError(
            f"--layer {layer} is out of range: the backbone has {plural(n_blocks, 'block')} (0..{n_blocks - 1}, "
            "-1 last)"
        )
    return int(layer) % n_blocks


def attention_maps(
    backbone: Any,
    sample: dict[str, Any] | np.ndarray,
    *,
    layer: int = -1,
    heads: Sequence[int] | None = None,
    mass: float = 0.6,
    point: tuple[int, int] | None = None,
) -> AttentionMaps:
    """CLS-to-patch attention of block `layer` for one image (a `read_input` sample, or a reflectance array
    [C,H,W]); the image is cropped to whole patches from the top-left. `point` (col, row) in pixels adds the
    cosine similarity of that patch's (normalised) token to every patch token of the same block. `backbone` is a
    loaded backbone or a spec string (loaded on CPU)."""
    import torch

    if isinstance(backbone, str | Path):
        from geodino.backbones import load_backbone

        backbone = load_backbone(str(backbone))

    if isinstance(sample, np.ndarray):
        sample = {"image": sample, "valid": np.ones(sample.shape[1:], bool)}
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
    idx = _layer_index(layer, int(backbone.n_blocks))
    x = backbone.normalize(torch.from_numpy(np.ascontiguousarray(image)))[None]
    x = torch.where(torch.from_numpy(valid)[None, None], x, torch.zeros(()))  # nodata -> the band mean
    store: dict[str, Any] = {}
    if backbone.kind == "geodino":
        model = backbone.model
        with _geodino_capture(model, idx, store) as attn:
            maps, _ = backbone.features(x, layers=[idx])
        weights = _geodino_cls_attention(attn, store, int(model.n_prefix_tokens))
        n_heads = int(attn.num_heads)
    else:
        model = backbone.model
        with _timm_capture(model, idx, backbone.spec, store):
            maps, _ = backbone.features(x, layers=[idx])
        if "weights" not in store:
            raise InputError(f"backbone {backbone.spec}: block {idx} did not expose attention weights in this pass")
        n_prefix = int(getattr(model, "num_prefix_tokens", 1))
        weights = store["weights"][:, :, 0, n_prefix:]
        n_heads = int(weights.shape[1])
    if weights.shape[-1] != h * w:
        raise InputError(f"backbone {backbone.spec}: {weights.shape[-1]} patch tokens for a {h}x{w} patch grid")
    all_heads = weights[0].float().reshape(n_heads, h, w).cpu().numpy()
    head_ids = list(range(n_heads)) if heads is None else [int(i) for i in heads]
    twice = sorted({i for i in head_ids if head_ids.count(i) > 1})
    if twice:
        raise InputError(f"--heads {head_ids} names head {twice[0]} twice; give each head once")
    bad = [i for i in head_ids if not 0 <= i < n_heads]
    if bad or not head_ids:
        raise InputError(f"--heads {head_ids}: the backbone's block {idx} has heads 0..{n_heads - 1}")
    sel = all_heads[head_ids]
    mean = sel.mean(axis=0)
    sim = None
    if point is not None:
        col, row = int(point[0]), int(point[1])
        what = "window" if sample.get("window") is not None else "image"
        if not (0 <= col < W and 0 <= row < H):
            raise InputError(f"point (col {col}, row {row}) is outside the {W} x {H} px {what} (width x height)")
        if not (col < w * p and row < h * p):
            raise InputError(
                f"point (col {col}, row {row}) is in the part cut off: the {W} x {H} px {what} is read as "
                f"{w * p} x {h * p} px (whole {p} px patches from the top-left); give a point with col < {w * p} and "
                f"row < {h * p}"
            )
        feats = torch.nn.functional.normalize(maps[0][0].float(), dim=0)  # [D, h, w]
        # unit vectors' dot products, clamped: float32 rounding gave 1.0000002 at the query cell itself
        sim = torch.einsum("d,dhw->hw", feats[:, row // p, col // p], feats).clamp(-1.0, 1.0).cpu().numpy()
    info = {"spec": backbone.spec, "n_heads": n_heads, "kept_share": float(mass_mask(mean, mass).mean())}
    if (h * p, w * p) != (H, W):
        info["cropped_from"] = (H, W)
    return AttentionMaps(
        heads=sel,
        head_ids=head_ids,
        mean=mean,
        mask=mass_mask(mean, mass),
        head_masks=mass_mask(sel, mass),
        layer=idx,
        mass=float(mass),
        patch_size=p,
        image_size=(h * p, w * p),
        similarity=sim,
        point=None if point is None else (int(point[0]), int(point[1])),
        info=info,
    )


# ------------------------------------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------------------------------------
def _up(grid: np.ndarray, p: int) -> np.ndarray:
    return np.repeat(np.repeat(grid, p, axis=0), p, axis=1)


def _heat(grid: np.ndarray) -> np.ndarray:
    """[h, w] -> uint8 RGB [h, w, 3] through matplotlib's inferno, min-max scaled."""
    import matplotlib

    g = np.asarray(grid, dtype=np.float64)
    lo, hi = float(np.nanmin(g)), float(np.nanmax(g))
    g = (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
    return (matplotlib.colormaps["inferno"](g)[..., :3] * 255).astype(np.uint8)


def overlay(rgb: np.ndarray, grid: np.ndarray, p: int, alpha: float = 0.6) -> np.ndarray:
    """A patch-grid map blended over the image (uint8 [H, W, 3])."""
    heat = _up(_heat(grid), p)[: rgb.shape[0], : rgb.shape[1]]
    return (rgb.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).astype(np.uint8)


def _mask_overlay(rgb: np.ndarray, mask: np.ndarray, p: int) -> np.ndarray:
    keep = _up(mask, p)[: rgb.shape[0], : rgb.shape[1]]
    out = rgb.astype(np.float32) * np.where(keep, 1.0, 0.25)[..., None]
    return out.astype(np.uint8)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    from geodino.io import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")


def _panel(path: Path, rgb: np.ndarray, maps: AttentionMaps, title: str) -> None:
    """One figure: image, mean attention, mass mask, similarity (if any) and each selected head."""
    from geodino.viz.figures import figures, save_figure

    plt = figures()

    p = maps.patch_size
    tiles = [
        ("image", rgb),
        ("mean over heads", overlay(rgb, maps.mean, p)),
        (f"{maps.mass:.0%} attention mass", _mask_overlay(rgb, maps.mask, p)),
    ]
    if maps.similarity is not None:
        tiles.append(("similarity to point", overlay(rgb, maps.similarity, p)))
    tiles += [(f"head {i}", overlay(rgb, a, p)) for i, a in zip(maps.head_ids, maps.heads)]
    cols = min(len(tiles), 6)
    rows = math.ceil(len(tiles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.7 * rows + 0.3), squeeze=False)
    fig.subplots_adjust(hspace=0.25)  # each row's titles clear the images above
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, img) in zip(axes.ravel(), tiles):
        ax.imshow(img)
        ax.set_title(name, fontsize=8)
        if name == "similarity to point" and maps.point is not None:
            ax.plot(maps.point[0], maps.point[1], "c+", markersize=10, mew=2)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=110, format="png")


def _write_cog(path: Path, maps: AttentionMaps, crs: Any, transform: Any) -> None:
    """Float32 COG on the patch grid: mean, mask, each selected head, similarity; band descriptions name them."""
    import rasterio
    from affine import Affine

    from geodino.io import atomic_path

    layers = [("attention_mean", maps.mean), (f"mask_{round(maps.mass * 100)}pct", maps.mask.astype(np.float32))]
    layers += [(f"head_{i}", a) for i, a in zip(maps.head_ids, maps.heads)]
    if maps.similarity is not None:
        layers.append(("similarity", maps.similarity))
    h, w = maps.grid
    profile = {
        "driver": "COG",
        "height": h,
        "width": w,
        "count": len(layers),
        "dtype": "float32",
        "crs": crs,
        "transform": Affine(*tuple(transform)[:6]) @ Affine.scale(maps.patch_size),
        "compress": "deflate",
    }
    with atomic_path(path, overwrite=True) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for b, (name, arr) in enumerate(layers, start=1):
            dst.write(np.asarray(arr, dtype=np.float32), b)
            dst.set_band_description(b, name)
        dst.update_tags(layer=maps.layer, mass=maps.mass, patch_size=maps.patch_size, backbone=maps.info.get("spec"))


def _written_here(name: str, prefix: str) -> bool:
    """Whether `name` is a file that `write_attention` writes with `prefix` (its PNGs, COG or JSON summary)."""
    p = re.escape(prefix)
    return re.fullmatch(rf"{p}(\.json|\.tif|_(image|mean|mask|panel|similarity|head\d+)\.png)", name) is not None


def check_output_folder(out_dir: str | Path, *, prefix: str = "attention", overwrite: bool = False) -> Path:
    """Refuse (one line naming the folder and a file in it) an output folder that already holds attention maps
    of an earlier run, unless `overwrite`: a second run into the same `--out` silently replaced the first one's
    maps. Called before any work (the CLI checks before loading the backbone); returns the folder as a Path."""
    out = Path(out_dir).expanduser()
    if overwrite or not out.is_dir():
        return out
    found = sorted(f.name for f in out.iterdir() if _written_here(f.name, prefix))
    if found:
        raise InputError(
            f"output folder {out} already holds attention maps ({found[0]}, {plural(len(found), 'file')}); pass "
            "--overwrite to replace them (or choose another folder)"
        )
    return out


def write_attention(
    maps: AttentionMaps,
    sample: dict[str, Any],
    out_dir: str | Path,
    *,
    prefix: str = "attention",
    overwrite: bool = False,
) -> dict[str, Path]:
    """PNGs over the image (mean, mask, each head, similarity, one panel), a COG on the patch grid when the
    sample is georeferenced, and a JSON summary; returns {name: path}. A folder that already holds attention maps
    is refused unless `overwrite` (then an earlier run's maps that this run does not write are removed)."""
    from geodino.data.preview import to_rgb
    from geodino.data.sensors import get_sensor
    from geodino.io import atomic_path, make_dirs

    out = make_dirs(check_output_folder(out_dir, prefix=prefix, overwrite=overwrite))
    H, W = maps.image_size
    image = np.asarray(sample["image"])[:, :H, :W]
    valid = np.asarray(sample.get("valid", np.ones(image.shape[1:], bool)))[:H, :W]
    sensor = sample.get("sensor") or get_sensor("imagenet")
    rgb = to_rgb(image, sensor, valid if not valid.all() else None)
    files: dict[str, Path] = {}
    p = maps.patch_size

    def png(name: str, arr: np.ndarray) -> None:
        files[name] = out / f"{prefix}_{name}.png"
        _save_png(files[name], arr)

    png("image", rgb)
    png("mean", overlay(rgb, maps.mean, p))
    png("mask", _mask_overlay(rgb, maps.mask, p))
    for i, a in zip(maps.head_ids, maps.heads):
        png(f"head{i:02d}", overlay(rgb, a, p))
    if maps.similarity is not None:
        png("similarity", overlay(rgb, maps.similarity, p))
    files["panel"] = out / f"{prefix}_panel.png"
    _panel(files["panel"], rgb, maps, f"{maps.info.get('spec', '')} · block {maps.layer}")
    if sample.get("crs") and sample.get("transform") is not None:
        files["cog"] = out / f"{prefix}.tif"
        _write_cog(files["cog"], maps, sample["crs"], sample["transform"])
    summary = {
        "input": sample.get("path"),
        "bands": list(sample.get("bands") or getattr(sensor, "bands", ())),
        "sensor": getattr(sensor, "name", None),
        "backbone": maps.info.get("spec"),
        "layer": maps.layer,
        "heads": maps.head_ids,
        "mass": maps.mass,
        "patch_grid": list(maps.grid),
        "patch_size": p,
        "kept_patch_share": maps.info.get("kept_share"),
        "window": sample.get("window"),  # col, row, width, height in pixels of the input; null: all of it
        "point": maps.point,  # col, row in pixels of the image the maps cover (the window's, when there is one)
        "files": {k: v.name for k, v in files.items()},
    }
    files["json"] = out / f"{prefix}.json"
    earlier = _earlier_files(files["json"])
    with atomic_path(files["json"], overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    for name in sorted(earlier - {f.name for f in files.values()}):  # an earlier run's maps, not this input's
        (out / name).unlink(missing_ok=True)
    return files


def _earlier_files(summary: Path) -> set[str]:
    """The file names an earlier run listed in its JSON summary in this folder (only those are ever removed)."""
    try:
        listed = json.loads(summary.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(v) for v in listed.values() if isinstance(v, str) and "/" not in v} - {summary.name}


def visualize_attention(
    path: str | Path,
    backbone: Any,
    out_dir: str | Path,
    *,
    layer: int = -1,
    heads: Sequence[int] | None = None,
    mass: float = 0.6,
    point: tuple[int, int] | None = None,
    sensor: Any = None,
    bands: Sequence[str] | None = None,
    window: Sequence[int] | None = None,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Path]:
    """`geodino viz attention`: read `path`, load `backbone` (a spec or a FrozenBackbone), write the maps (an
    `out_dir` that holds earlier maps is refused before any work unless `overwrite`)."""
    check_output_folder(out_dir, overwrite=overwrite)
    if isinstance(backbone, str | Path):
        from geodino.backbones import load_backbone

        backbone = load_backbone(str(backbone), device=device)
    sample = read_input(path, sensor=sensor, bands=bands, window=window)
    at = window_point(point, window, path) if point is not None else None
    maps = attention_maps(backbone, sample, layer=layer, heads=heads, mass=mass, point=at)
    note = crop_note(maps, sample)
    if note:
        print(note, file=sys.stderr)
    return write_attention(maps, sample, out_dir, overwrite=overwrite)
