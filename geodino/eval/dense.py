"""What the dense probes (segmentation, canopy height, detection) share.

Reading images and rasters as reflectance-scaled tensors, checking bands against the backbone, cutting
tiles, extracting frozen features (padded to the patch grid, optionally cached in memory or on disk),
sliding-window inference, and the head training loop (AdamW, PANGAEA's step decay at 60 % and 90 %).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.errors import ConfigError, InputError, plural

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", *RASTER_SUFFIXES)
SAMPLES_SCALED = "none here: the samples came scaled (train_data/val_data or a dataset adapter)"


class Backbone(Protocol):
    """What the probes use of `geodino.backbones.FrozenBackbone`."""

    patch_size: int
    embed_dim: int
    n_blocks: int

    def normalize(self, x: Tensor) -> Tensor: ...

    def features(self, x: Tensor, layers: Any = "last", norm: bool = True) -> tuple[list[Tensor], list[Tensor]]: ...


# ----------------------------------------------------------------------------------------------- reading


@dataclass
class Raster:
    """An image as a tensor plus what is needed to write predictions back onto its grid."""

    data: np.ndarray  # [C,H,W] as stored
    valid: np.ndarray  # [H,W] bool
    path: Path
    crs: Any = None
    transform: Any = None
    nodata: float | None = None

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None and not self.transform.is_identity


def read_raster(path: str | Path) -> Raster:
    """Read an image (GeoTIFF/COG/VRT via rasterio, PNG/JPEG via Pillow) as [C,H,W] with a validity mask.

    A pixel is invalid when every band equals the nodata value (a bright pixel in one band stays valid).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"image {path} not found; check the path in the config")
    if path.suffix.lower() in RASTER_SUFFIXES:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as src:
                    data = src.read()
                    nodata = src.nodata
                    crs, transform = src.crs, src.transform
        except RasterioIOError as exc:
            raise InputError(f"cannot read raster {path}: {exc}; check that it is a valid GeoTIFF") from exc
        valid = np.ones(data.shape[1:], dtype=bool)
        if nodata is not None:
            nd = np.isnan(data) if np.isnan(nodata) else data == np.asarray(nodata, dtype=data.dtype)
            valid &= ~nd.all(axis=0)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return Raster(data, valid, path, crs, transform, nodata)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}; use PNG, JPEG or GeoTIFF") from exc
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return Raster(np.ascontiguousarray(arr), np.ones(arr.shape[1:], dtype=bool), path)


def data_scale(dtype: np.dtype, scale: float) -> float:
    """The factor to reflectance: `scale` when set (> 0), else 1/255 for 8-bit, 1/10000 for 16-bit, 1 for floats."""
    if scale > 0:
        return scale
    if dtype == np.uint8:
        return 1 / 255
    if dtype in (np.uint16, np.int16):
        return 1 / 10000
    return 1.0


def scaling_text(scale: np.ndarray | float, offset: np.ndarray | float) -> str:
    """`x*S+O` with one value or a list per band (the offset left out when zero)."""

    def fmt(v: np.ndarray | float) -> str:
        v = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
        return f"{float(v[0]):g}" if v.size == 1 else "[" + ",".join(f"{float(x):g}" for x in v) + "]"

    off = np.atleast_1d(np.asarray(offset, dtype=np.float64)).ravel()
    if not np.any(off):
        return f"x*{fmt(scale)}"
    return f"x*{fmt(scale)}" + (f"{float(off[0]):+g}" if off.size == 1 else f"+{fmt(off)}")


class InputScaling:
    """DN -> reflectance (`x * scale + offset`) for a probe's image files, and which rule each image got.

    In order: an explicit `data_scale` (> 0, with `data_offset`), else the DN scale/offset the backbone's export
    records (what `geodino embed` applies: `geodino.embed.sweep.recorded_scale`) when it fits the images (one
    value or one per band; not uint8 data with a scale for 16-bit DN, nor 16-bit values above 255 with a scale for
    8-bit DN), else by dtype (1/255 for 8-bit, 1/10000 for 16-bit, 1 for floats). Without the record, data of a
    sensor with an offset (Landsat C2 L2: 2.75e-5, -0.2) reached the backbone in other units than it was trained
    on. `what` names the probe in the line `say` prints; `keys` are the config keys of the explicit scale and
    offset, for the descriptions.
    """

    def __init__(
        self,
        backbone: Any = None,
        scale: float = 0.0,
        offset: float = 0.0,
        what: str = "",
        keys: tuple[str, str] = ("data_scale", "data_offset"),
    ) -> None:
        self.scale, self.offset, self.what, self.keys = float(scale), float(offset), what, keys
        self.recorded: tuple[np.ndarray, np.ndarray, str] | None = None
        if backbone is not None and self.scale <= 0:
            from geodino.embed.sweep import recorded_scale

            rec = recorded_scale(backbone)
            if rec is not None:
                where = rec[2].split(" (", 1)[1].removesuffix(")") if " (" in rec[2] else ""  # sensor, file
                self.recorded = (rec[0], rec[1], where or f"backbone {backbone_name(backbone)}")
        self.used: dict[str, None] = {}  # the rules applied so far, in order (a dict as an ordered set)

    @classmethod
    def of(cls, cfg: Any, backbone: Any = None, what: str = "") -> InputScaling:
        """The rule of a probe config's `data_scale`/`data_offset` keys and the backbone's record."""
        return cls(backbone, getattr(cfg, "data_scale", 0.0), getattr(cfg, "data_offset", 0.0), what)

    def rule(self, data: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float, str]:
        """(scale, offset, description) for `data` [C,H,W] in file units (after band selection)."""
        if self.scale > 0:
            keys = self.keys[0] + (f", {self.keys[1]}" if self.offset else "")
            return self.scale, self.offset, f"{scaling_text(self.scale, self.offset)} ({keys})"
        why = ""
        if self.recorded is not None:
            scale, offset, source = self.recorded
            why = self._misfit(data, scale, offset)
            if not why:
                text = f"{scaling_text(scale, offset)} (the backbone's DN scale: {source})"
                if scale.size > 1 or offset.size > 1:  # per band: broadcast over [C,H,W]
                    scale, offset = scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)
                return scale, offset, text
        factor = data_scale(data.dtype, 0.0)
        rule = {1 / 255: "x/255", 1 / 10000: "x/10000"}.get(factor, "x")
        text = f"{rule} (by dtype: {data.dtype.name}{' used as reflectance' if factor == 1.0 else ''}"
        if self.recorded is not None:
            scale, offset, source = self.recorded
            text += f"; the backbone's DN scale {scaling_text(scale, offset)} ({source}) does not fit: {why}"
        return factor, 0.0, text + f"; set {self.keys[0]} if wrong)"

    @staticmethod
    def _misfit(data: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> str:
        """Why a recorded scale does not fit `data` ("" when it does): `data.bit_depth.scale_misfit`."""
        from geodino.data.bit_depth import scale_misfit

        top = int(data.max()) if data.dtype in (np.uint16, np.int16) and data.size else None
        return scale_misfit(data.dtype, data.shape[0], scale, offset, top)

    def apply(self, data: np.ndarray) -> Tensor:
        """[C,H,W] float32 reflectance of `data` (file units; NaN -> 0); the rule is noted for `describe`."""
        scale, offset, text = self.rule(data)
        self.used.setdefault(text, None)
        x = torch.from_numpy(np.ascontiguousarray(data).astype(np.float32))
        x = x * torch.as_tensor(np.asarray(scale, dtype=np.float32))
        if np.any(offset):
            x = x + torch.as_tensor(np.asarray(offset, dtype=np.float32))
        return torch.nan_to_num(x)

    def describe(self, default: str = SAMPLES_SCALED) -> str:
        """The rules used so far, '; '-joined (`default` when no image file was scaled: the samples came scaled)."""
        return "; ".join(self.used) or default

    def say(self) -> str:
        """Print `<what>: input scaling <rules>` to stderr when image files were scaled (once, at the end of a
        run: a failed run prints only its error); returns `describe()` for the metrics JSON."""
        if self.used:
            import sys

            print(f"{self.what or 'probe'}: input scaling {self.describe()}", file=sys.stderr)
        return self.describe()


def check_data_offset(scale: float, offset: float, keys: tuple[str, str] = ("data_scale", "data_offset")) -> None:
    """Refuse an offset without a scale (`keys` name them): the offset belongs to an explicit DN -> reflectance
    rule, and alone it would be added to data scaled by another rule."""
    if offset and scale <= 0:
        s, o = keys
        raise ConfigError(
            f"{o}={offset:g} needs {s}: set {s} to the DN -> reflectance factor too "
            f"(e.g. {s}=2.75e-5, {o}=-0.2 for Landsat C2 L2), or drop {o}"
        )


def to_image_tensor(r: Raster, scale: float | InputScaling = 0.0, bands: Sequence[int] | None = None) -> Tensor:
    """[C,H,W] float32 reflectance (scaled, not standardised) of a raster's `bands` (0-based; empty: all).

    `scale` is a probe's `InputScaling` (data_scale, else the backbone's recorded DN scale, else by dtype), or a
    factor (> 0) or 0 for the dtype rule alone."""
    data = r.data
    if bands:
        if max(bands) >= data.shape[0] or min(bands) < 0:
            raise ConfigError(f"bands={list(bands)} but {r.path} has {plural(data.shape[0], 'band')} (0-based indices)")
        data = data[list(bands)]
    if isinstance(scale, InputScaling):
        return scale.apply(data)
    x = torch.from_numpy(np.ascontiguousarray(data).astype(np.float32)) * data_scale(r.data.dtype, scale)
    return torch.nan_to_num(x)


def check_bands(n_bands: int, backbone: Any, where: str) -> None:
    """Refuse a band-count mismatch with a line saying how to adapt the backbone or select bands."""
    want = getattr(backbone, "in_chans", None)
    if want is not None and int(want) != int(n_bands):
        spec = getattr(backbone, "spec", "the backbone")
        raise InputError(
            f"{where} has {plural(n_bands, 'band')} but backbone {spec} expects {want}; select "
            f"{plural(int(want), 'band')} with the config key bands=[...] or adapt the patch embedding to "
            f"{plural(n_bands, 'band')} "
            f"(load_backbone(spec, bands={n_bands}), or '?bands={n_bands}' in an arch: spec)"
        )


def list_files(spec: str | Path | Sequence[str | Path], suffixes: Sequence[str], what: str) -> list[Path]:
    """Files from a file, a folder (its files with `suffixes`), a glob, or a list of those; sorted, non-empty."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    out: list[Path] = []
    for item in items:
        p = Path(str(item)).expanduser()
        if any(ch in str(item) for ch in "*?["):
            out.extend(sorted(Path(p.anchor or ".").glob(str(p.relative_to(p.anchor)) if p.anchor else str(p))))
        elif p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in suffixes and not f.name.startswith(".")))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{what} {p} not found; point the config at an existing file or folder")
    if not out:
        raise InputError(f"no {what} files found in {spec} (looked for {', '.join(suffixes)})")
    return out


# ----------------------------------------------------------------------------------------------- tiles


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Start offsets covering [0, size) with windows of `crop`: evenly spread (PANGAEA's linspace), the last
    window flush with the edge, overlap only as much as needed. One window when size <= crop."""
    if size <= crop:
        return [0]
    n = math.ceil((size - crop) / stride) + 1
    return sorted({round(v) for v in np.linspace(0, size - crop, n)})


def tile_grid(h: int, w: int, crop: int, stride: int | None = None) -> list[tuple[int, int]]:
    """(row, col) starts of the windows covering an h x w image."""
    stride = stride or crop
    return [(r, c) for r in window_starts(h, crop, stride) for c in window_starts(w, crop, stride)]


def crop_pad(x: Tensor, r: int, c: int, size: int, fill: float = 0.0) -> Tensor:
    """The [..., size, size] window at (r, c), padded with `fill` where it runs past the edge."""
    win = x[..., r : r + size, c : c + size]
    ph, pw = size - win.shape[-2], size - win.shape[-1]
    if ph or pw:
        win = F.pad(win, (0, pw, 0, ph), value=fill)
    return win


# ----------------------------------------------------------------------------------------------- features


class LayerError(ConfigError):
    """A head's layer choice that this backbone cannot give (four maps from fewer than four blocks, a block index
    past the last). The suite runner checks every task for it before any runs: it stops a run up front, and a
    `--compare` backbone skips the task instead (see `geodino.eval.runner.prepare_suite`)."""

    def __init__(self, message: str, reason: str, fix: str, n_blocks: int):
        super().__init__(message)
        self.reason = reason  # what the head needs, without the backbone: 'canopy head=dpt needs four layers'
        self.fix = fix  # the config change that avoids it: 'head=linear'
        self.n_blocks = n_blocks


def backbone_name(backbone: Any) -> str:
    """The backbone's spec for messages (its class name when it has none)."""
    return str(getattr(backbone, "spec", "") or type(backbone).__name__)


def blocks_text(n: int) -> str:
    return plural(n, "block")


def resolve_layers(
    layers: str | Sequence[int],
    n_blocks: int,
    need_four: bool,
    *,
    what: str = "this probe",
    backbone: str = "in use",
) -> str | list[int]:
    """Validate a layer choice; dense multi-level heads need exactly four layers. `what` names the probe and head
    (`segmentation head=upernet`) and `backbone` the spec, for the messages. LayerError when the backbone has too
    few blocks for the choice; ConfigError when the choice itself is wrong."""
    if isinstance(layers, str):
        if layers not in ("last", "four_last", "four_even"):
            raise ConfigError(
                f"{what}: layers={layers!r} must be last, four_last, four_even or a list of block indices"
            )
        if need_four and layers == "last":
            raise ConfigError(
                f"{what}: layers='last' gives one map but this head needs four; use four_even or four_last"
            )
        if need_four and n_blocks < 4:  # four_last / four_even would give one map per block
            raise LayerError(
                f"{what} on backbone {backbone}: this head needs four layers but the backbone has "
                f"{blocks_text(n_blocks)}; use head=linear or a backbone with at least 4 blocks",
                f"{what} needs four layers",
                "head=linear",
                n_blocks,
            )
        return layers
    idx = [int(i) for i in layers]
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


@torch.no_grad()
def extract(backbone: Backbone, images: Tensor, layers: str | list[int]) -> tuple[list[Tensor], list[Tensor]]:
    """Frozen features of reflectance images [B,C,H,W]: normalised, padded to the patch grid (zeros after
    normalisation, i.e. the mean), no gradients. Maps cover ceil(H/p) x ceil(W/p) patches."""
    p = backbone.patch_size
    x = backbone.normalize(images)
    h, w = x.shape[-2:]
    ph, pw = (-h) % p, (-w) % p
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    maps, cls = backbone.features(x, layers=layers)
    return [m.float() for m in maps], [c.float() for c in cls]


class FeatureStore:
    """Frozen features of equal-size tiles, filled batch by batch (`add`), read back by tile index (`get`).

    `memory` keeps float16 tensors; `disk` writes float16 `.npy` chunks under `folder` and memory-maps them, so
    tile sets larger than RAM train heads without re-running the backbone each epoch; `none` keeps the tiles
    (float16) and re-extracts features every batch (least memory for features, slowest).
    """

    def __init__(
        self, backbone: Backbone, layers: str | list[int], mode: str = "memory", folder: str | Path | None = None
    ):
        if mode not in ("memory", "disk", "none"):
            raise ConfigError(f"cache_features={mode!r} must be memory, disk or none")
        if mode == "disk" and folder is None:
            raise ConfigError("cache_features=disk needs a cache folder")
        self.backbone, self.layers, self.mode = backbone, layers, mode
        self.folder = Path(folder) if folder is not None else None
        self._chunks: list[tuple[list[Any], list[Any]]] = []  # per chunk: (maps per layer, cls per layer)
        self._index: list[tuple[int, int]] = []  # tile -> (chunk, row)

    @classmethod
    def from_tiles(
        cls,
        backbone: Backbone,
        tiles: Tensor,
        layers: str | list[int],
        mode: str = "memory",
        folder: str | Path | None = None,
        batch_size: int = 8,
        desc: str = "features",
        progress: bool = True,
    ) -> FeatureStore:
        """A store of all `tiles` [N,C,H,W] (a progress bar over batches unless `progress` is off)."""
        from tqdm.auto import tqdm

        store = cls(backbone, layers, mode, folder)
        n = tiles.shape[0]
        for start in tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=not progress or n <= batch_size):
            store.add(tiles[start : start + batch_size])
        return store

    def add(self, tiles: Tensor) -> None:
        """Append a batch of tiles [B,C,H,W] (reflectance): their features, or the tiles themselves for `none`."""
        c = len(self._chunks)
        if self.mode == "none":
            self._chunks.append(([tiles.half()], []))
        else:
            maps, cls = extract(self.backbone, tiles, self.layers)
            if self.mode == "memory":
                self._chunks.append(([m.half() for m in maps], [t.half() for t in cls]))
            else:
                assert self.folder is not None
                self.folder.mkdir(parents=True, exist_ok=True)
                arrays: tuple[list[Any], list[Any]] = ([], [])
                for kind, group in (("map", maps), ("cls", cls)):
                    for i, t in enumerate(group):
                        f = self.folder / f"{kind}{i}_{c:06d}.npy"
                        np.save(f, t.half().numpy())
                        arrays[0 if kind == "map" else 1].append(np.load(f, mmap_mode="r"))
                self._chunks.append(arrays)
        self._index.extend((c, r) for r in range(tiles.shape[0]))

    def __len__(self) -> int:
        return len(self._index)

    def _gather(self, group: int, layer: int, idx: Sequence[int]) -> Tensor:
        rows = []
        for i in idx:
            c, r = self._index[i]
            x = self._chunks[c][group][layer][r]
            rows.append(x if isinstance(x, Tensor) else torch.from_numpy(np.array(x)))
        return torch.stack(rows).float()

    def get(self, idx: Sequence[int]) -> tuple[list[Tensor], list[Tensor]]:
        """Features (float32) of the tiles `idx`: (maps per layer [B,D,h,w], CLS per layer [B,D])."""
        idx = list(idx)
        if self.mode == "none":
            return extract(self.backbone, self._gather(0, 0, idx), self.layers)
        n_maps, n_cls = len(self._chunks[0][0]), len(self._chunks[0][1])
        return [self._gather(0, i, idx) for i in range(n_maps)], [self._gather(1, i, idx) for i in range(n_cls)]


# ----------------------------------------------------------------------------------------------- training


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch's global generators; returns a torch generator seeded alike. The probes call
    it right before building a head (its initial weights then depend on `seed` only, not on whatever drew random
    numbers before, e.g. loading an `arch:` backbone) and again before training (shuffling, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def assert_frozen(backbone: nn.Module | Any) -> None:
    """Freeze the backbone (eval mode, no grads) so a head's optimiser can never touch it."""
    if isinstance(backbone, nn.Module):
        backbone.eval()
        for p in backbone.parameters():
            p.requires_grad_(False)


def train_head(
    head: nn.Module,
    store: FeatureStore,
    loss_fn: Callable[[nn.Module, list[Tensor], list[Tensor], list[int]], Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    desc: str = "train head",
    progress: bool = True,
) -> list[float]:
    """Train `head` on cached frozen features; `loss_fn(head, maps, cls, idx)` returns the batch loss.

    AdamW with PANGAEA's step decay (x0.1 at 60 % and 90 % of the steps); a per-epoch progress bar unless
    `progress` is off (the suite's `progress=false`). Returns the mean loss per epoch.
    Raises TrainingError on a non-finite loss.
    """
    from tqdm.auto import tqdm

    from geodino.errors import TrainingError

    gen = seed_everything(seed)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n = len(store)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.6 * total), int(0.9 * total)], gamma=0.1)
    history: list[float] = []
    bar = tqdm(range(epochs), desc=desc, leave=False, disable=not progress)
    for epoch in bar:
        head.train()
        perm = torch.randperm(n, generator=gen).tolist()
        losses = []
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            if len(idx) == 1 and n > 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in head.modules()):
                idx = idx + perm[:1]  # BatchNorm cannot train on a single sample
            maps, cls = store.get(idx)
            loss = loss_fn(head, maps, cls, idx)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss {float(loss)} at epoch {epoch}; lower lr (now {lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    head.eval()
    return history


# ----------------------------------------------------------------------------------------------- inference


@torch.no_grad()
def sliding_window(
    predict: Callable[[Tensor], Tensor], image: Tensor, crop: int, stride: int, batch_size: int = 4
) -> Tensor:
    """Predict [K,H,W] for a [C,H,W] image with windows of `crop` and `stride` (outputs averaged by count).

    An image that fits in one window is predicted whole, so the result equals whole-image inference there.
    `predict` maps [B,C,h,w] to [B,K,h,w] at the input size.
    """
    h, w = image.shape[-2:]
    if h <= crop and w <= crop:
        return predict(image[None])[0]
    ch, cw = min(crop, h), min(crop, w)
    starts = [(r, q) for r in window_starts(h, ch, stride) for q in window_starts(w, cw, stride)]
    out: Tensor | None = None
    count = torch.zeros(1, h, w)
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        batch = torch.stack([image[:, r : r + ch, q : q + cw] for r, q in chunk])
        pred = predict(batch)
        if out is None:
            out = torch.zeros(pred.shape[1], h, w)
        for (r, q), p in zip(chunk, pred):
            out[:, r : r + ch, q : q + cw] += p
            count[:, r : r + ch, q : q + cw] += 1
    assert out is not None
    return out / count


def upsample_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of [B,K,h,w] logits/values to `size` (no-op when equal)."""
    return (
        x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    )


def head_predict(backbone: Backbone, head: nn.Module, layers: str | list[int]) -> Callable[[Tensor], Tensor]:
    """A [B,C,H,W] reflectance -> [B,K,H,W] predictor through the frozen backbone and a trained head."""
    p = backbone.patch_size

    @torch.no_grad()
    def predict(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        maps, cls = extract(backbone, x, layers)
        out = head(maps, cls)
        hp, wp = math.ceil(h / p) * p, math.ceil(w / p) * p
        return upsample_to(out, (hp, wp))[..., :h, :w]

    return predict


def rgb_preview(image: Tensor) -> np.ndarray:
    """[H,W,3] in [0,1] for plots: first three bands (or the single band), 2-98 % stretched per band."""
    x = image.detach().float()
    x = x[:3] if x.shape[0] >= 3 else x[:1].expand(3, -1, -1)
    arr = x.permute(1, 2, 0).numpy().astype(np.float64)
    lo, hi = np.percentile(arr, 2, axis=(0, 1)), np.percentile(arr, 98, axis=(0, 1))
    return np.clip((arr - lo) / np.maximum(hi - lo, 1e-6), 0, 1)


class LazySamples:
    """A sequence of probe samples loaded on access (folders of files need not fit in memory)."""

    def __init__(self, items: Sequence[Any], load: Callable[[Any], dict[str, Any]]):
        self.items, self.load = list(items), load

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.load(self.items[i])


class Subset:
    """Positions `indices` of a sequence of samples (a lazy view)."""

    def __init__(self, data: Any, indices: Sequence[int]):
        self.data, self.indices = data, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.data[self.indices[i]]


def holdout_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded (train, val) split of positions 0..n-1 holding out `fraction` of them (at least one, not all)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(n - 1, max(1, round(fraction * n)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def split_samples(data: Any, fraction: float, seed: int, what: str) -> tuple[Subset, Subset]:
    """A seeded (train, val) split of whole samples, holding out `fraction` of them (at least one)."""
    n = len(data)
    if n < 2:
        raise InputError(
            f"{what} needs validation data: set the val_* keys, or give at least two training images so that "
            "val_fraction of them can be held out"
        )
    train, val = holdout_indices(n, fraction, seed)
    return Subset(data, train), Subset(data, val)


def crop_and_stride(patch_size: int, crop_size: int, stride: int) -> tuple[int, int]:
    """The training tile (crop_size rounded down to the patch grid) and the sliding-window stride (0: 2/3 tile)."""
    crop = max(patch_size, crop_size // patch_size * patch_size)
    return crop, stride or max(patch_size, round(crop * 2 / 3))


def save_probe(out_dir: Path, task: str, head: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write a probe's trained head (`<task>_head.pt`) and metrics (`<task>_metrics.json`), each atomically."""

    from geodino.io import atomic_path, json_text
    from geodino.models.checkpoints.reproducible import save_torch

    with atomic_path(out_dir / f"{task}_head.pt") as tmp:
        save_torch(head, tmp)
    with atomic_path(out_dir / f"{task}_metrics.json") as tmp:
        tmp.write_text(json_text(metrics, indent=2))
