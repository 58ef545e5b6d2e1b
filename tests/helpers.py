"""Fixture writers shared across the test folders (the folders' conftests keep their own defaults on top)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Any = None,
    nodata: float | None = None,
    block: int | None = None,
    cog: bool = False,
    descriptions: list[str] | None = None,
) -> Path:
    """Write [C,H,W] `data` as a GeoTIFF (`block`: tiled with square blocks; `cog`: a COG with 64 px blocks) and
    return its path. `transform` defaults to 10 m pixels at (500000, 4650000)."""
    import rasterio
    from affine import Affine

    c, h, w = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": c,
        "dtype": data.dtype.name,
        "transform": transform if transform is not None else Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0),
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    if block is not None:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if cog:
        import rasterio.shutil

        with rasterio.MemoryFile() as mem:
            with mem.open(**profile) as tmp:
                tmp.write(data)
                if descriptions:
                    tmp.descriptions = tuple(descriptions)
            with mem.open() as src:
                rasterio.shutil.copy(src, path, driver="COG", blocksize=64)
        return path
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


def write_rgba(path: Path, rgb: np.ndarray, alpha: np.ndarray, origin: tuple[float, float] = (500000, 4000000)) -> Path:
    """Write uint8 [3,H,W] `rgb` and [H,W] `alpha` as an RGBA GeoTIFF (EPSG:32633, 10 m pixels from `origin`) whose
    band 4 is marked alpha, and return its path. The colour interpretation is set after the file is written, as
    GDAL keeps it only on an existing file."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    prof = dict(driver="GTiff", width=rgb.shape[2], height=rgb.shape[1], count=4, dtype="uint8", photometric="RGB")
    with rasterio.open(path, "w", crs="EPSG:32633", transform=from_origin(*origin, 10, 10), **prof) as dst:
        dst.write(np.concatenate([rgb, alpha[None]]))
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path


# The normalisation record of the 4-band exports the plug-in tests (stand-in and real TerraTorch) build.
EXPORT_RECORD = {
    "sensor": "demo4",
    "bands": ["BLUE", "GREEN", "RED", "NIR_NARROW"],
    "scale": 1e-4,
    "mean": [0.05, 0.08, 0.07, 0.3],
    "std": [0.02, 0.03, 0.04, 0.1],
}


class HostReads:
    """Counts the device tensors read by the host inside a `with` block (`aten._local_scalar_dense`: `.item()`,
    `float()`, `bool()`), each of which waits for the device on a GPU. Use as `with HostReads() as reads: ...`, then
    `reads.n`."""

    def __init__(self) -> None:
        self.n = 0
        self._mode: Any = None

    def __enter__(self) -> HostReads:
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                if func is torch.ops.aten._local_scalar_dense.default:
                    counter.n += 1
                return func(*args, **(kwargs or {}))

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


def scene_info(
    crs: str = "EPSG:32633",
    transform: tuple[float, ...] = (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0),
    width: int = 100,
    height: int = 80,
    *,
    path: str = "a.tif",
    band_names: tuple[str, ...] = ("r", "g", "b"),
    count: int = 3,
):
    """A `SceneInfo` of a uint8 scene without nodata on a given grid (`transform`: affine a..f), reading bands 1 to
    `count`, as the footprint, ROI and sampling tests build it without writing a file."""
    from rasterio.crs import CRS

    from geodino.data.rasters import SceneInfo

    return SceneInfo(
        path=path,
        crs=CRS.from_user_input(crs).to_wkt(),
        transform=tuple(transform)[:6],
        width=width,
        height=height,
        count=count,
        dtype="uint8",
        nodata=None,
        band_names=band_names,
        band_indexes=tuple(range(1, count + 1)),
    )


def trained_like(in_chans: int = 3, depth: int = 2):
    """A tiny ViT (vit_tiny, seed 0, eval mode) whose LayerScale gammas are drawn from N(0, 0.5) instead of the 1e-5
    init, so each block changes the tokens as a trained one does (the backbone and attention-map tests)."""
    import torch

    from geodino.models import build_model

    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=depth, in_chans=in_chans).eval()
    with torch.no_grad():
        for blk in m.blocks:
            blk.ls1.gamma.normal_(0, 0.5)
            blk.ls2.gamma.normal_(0, 0.5)
    return m


def jittered_vit(seed: int = 0, **kw):
    """A 4-band vit_tiny (patch 8, depth 2, eval mode) whose every parameter has N(0, 0.05) noise added after the
    init (torch seed `seed`), so no weight sits at its init value; `kw` goes to build_model (the convert tests)."""
    import torch

    from geodino.models import build_model

    torch.manual_seed(seed)
    m = build_model("vit_tiny", patch_size=8, in_chans=4, depth=2, **kw).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def four_band_backbone(path: Path) -> Path:
    """Save a 1-block ViT-small (32-D, patch 8, seed 0) for 4 bands with a blue/green/red/nir normalisation record
    at `path` (.safetensors): a checkpoint whose band options (?bands=, subset=, fill=) the spec tests try."""
    import torch

    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone

    torch.manual_seed(0)
    model = build_model("vit_small", in_chans=4, depth=1, embed_dim=32, num_heads=2, patch_size=8)
    rec = {"bands": ["blue", "green", "red", "nir"], "mean": [0.1] * 4, "std": [0.2] * 4, "scale": 1e-4}
    return save_backbone(model, path, normalization=rec)


def same_tree(a: Any, b: Any) -> bool:
    """Whether two nested checkpoint structures (dicts, lists, tuples, tensors, plain values) are bit-identical:
    the resume tests' comparison of saved states."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(same_tree, a, b))
    return a == b


IMAGENET_STATS = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def hf_imagenet_backbones(root: Path) -> dict[bool, Any]:
    """{do_rescale: a loaded 1-block ViT-Tiny HF folder whose preprocessor_config.json standardises with ImageNet
    mean/std}: with do_rescale false its record reads DN as given under reflectance statistics (the recorded-units
    warning's case), with true it is the normal x/255 record."""
    import json

    import torch

    from geodino.backbones import load_backbone
    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone

    torch.manual_seed(0)
    out = {}
    for rescale in (False, True):
        folder = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), root / f"hf{rescale}", layout="hf")
        processor = {"do_rescale": rescale, "rescale_factor": 1 / 255, "do_normalize": True}
        processor |= {"image_mean": IMAGENET_STATS[0], "image_std": IMAGENET_STATS[1]}
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
        out[rescale] = load_backbone(folder)
    return out


def write_sensor_yaml(path: Path, scale: float, mean: float, std: float) -> Path:
    """A 3-band RGB-like sensor file (bands b1..b3) with one DN scale and one mean/std for every band: the
    DN-as-reflectance warning tests' sensors."""
    import yaml

    bands = ["b1", "b2", "b3"]
    record = {"name": path.stem, "bands": bands, "scale": scale, "offset": 0.0, "mean": [mean] * 3, "std": [std] * 3}
    path.write_text(yaml.safe_dump({**record, "rgb_like": True}))
    return path


def stale_file(p: Path) -> Path:
    """`p` written and dated a minute past `io.STALE_AFTER_S`: what a killed run left behind, as the temp-name
    sweeps judge it."""
    import os
    import time

    from geodino.io import STALE_AFTER_S

    p.write_bytes(b"x")
    t = time.time() - STALE_AFTER_S - 60
    os.utime(p, (t, t))
    return p


def write_zarr3(ds: Any, path: Path | str, **kwargs: Any) -> None:
    """Write the xarray Dataset `ds` as a Zarr v3 store as xarray does by default (consolidated metadata, fixed-width
    string coordinates such as band names), hiding only the two warnings zarr gives about that writing (string dtype
    and consolidated metadata not in the v3 spec): such stores are users' stores and a test's deliberate input, and
    geodino only reads them, so any warning geodino gives on reading them still shows."""
    import warnings

    from zarr.errors import UnstableSpecificationWarning, ZarrUserWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UnstableSpecificationWarning)
        warnings.filterwarnings("ignore", "Consolidated metadata is currently not part", ZarrUserWarning)
        ds.to_zarr(path, zarr_format=3, **kwargs)
