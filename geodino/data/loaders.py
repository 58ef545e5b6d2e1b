"""Data configs, sources and DataLoaders: the SSL multi-crop loader and a plain sample loader. The source objects
are built from configs in `geodino.data.source_build` (re-exported here).

Determinism contract (CONTRIBUTING.md): rank r of w at step s reads sample indices `k·B·w + r·B + [0, B)` of the
source chosen for step s, where k counts that source's earlier steps (k = s with one source), so each source
numbers its own samples and a grid or image source covers all of its items once per epoch of its own, however
the sources are mixed; every sample (tile, crops) is a function of (seed, index), and masks of (seed, step,
rank). So a run resumed at `start_step` reads exactly what the uninterrupted run would have read, whatever the
number of DataLoader workers.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from geodino.data.collate import collate_ssl, finish_photometric
from geodino.data.config import DataConfig, SourceConfig
from geodino.data.corrupt_marks import CorruptMarks
from geodino.data.crops import CropsConfig, MultiCropTransform, choose_crop_set
from geodino.data.mixing import SourceMixer
from geodino.data.normalization import norm_for_data
from geodino.data.sensors import get_sensor
from geodino.data.source_build import build_source, build_sources  # re-exported: config -> source
from geodino.errors import ConfigError, InputError, plural

__all__ = [
    "DataConfig",
    "SourceConfig",
    "build_sample_loader",
    "build_source",
    "build_sources",
    "build_ssl_loader",
    "decode_min_area",
]

_CROP_STREAM = 0x63726F70


# ------------------------------------------------------------------------------------------------------------------
# SSL loader
# ------------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread while loading in the training process (num_workers 0), restored afterwards.

    The loader's tensors are small, and intra-op threads only add synchronisation there (a 48 px blur took 65 ms
    with 2 threads on a busy 2-core machine, 0.9 ms with 1). Workers already run single-threaded (PyTorch sets
    it), so only the main process needs this.
    """
    threads = torch.get_num_threads() if torch.utils.data.get_worker_info() is None else 1
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


class _SSLDataset(torch.utils.data.Dataset):
    """Maps a key (step, global index, source, crop set) to that sample's crops; `corrupt_replaced()`: the images
    that failed to decode so far, in this process and its DataLoader workers (`corrupt_marks`)."""

    def __init__(
        self, sources: Sequence[Any], transforms: Sequence[MultiCropTransform], seed: int, workers: bool = False
    ) -> None:
        self.sources = list(sources)
        self.transforms = list(transforms)
        self.seed = int(seed)
        self._corrupt = CorruptMarks(self.sources, shared=workers)  # `workers`: DataLoader worker processes read it

    def corrupt_replaced(self) -> int:
        return self._corrupt.count()

    def __len__(self) -> int:  # nominal; the batch sampler drives iteration
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key: tuple[int, int, int, int]) -> dict[str, Any]:
        step, index, src, crop_set = key
        source = self.sources[src]
        with _one_thread():
            try:
                sample = source.get(index, self.seed)
            finally:  # a sample that stops (every image failed) has still met its corrupt ones
                self._corrupt.mark(src, source)
            rng = np.random.default_rng([self.seed, source.stream, int(index), _CROP_STREAM])
            out = self.transforms[src](sample, rng, crop_set, photometric=False)
        out["_step"] = step
        out["_source"] = source.name
        out["_src"] = src
        return out


class _SSLBatches(torch.utils.data.Sampler):
    """Yields, per step from `start_step`, the B keys of this rank: indices k·B·w + r·B + [0, B), k the number of
    earlier steps of the step's source (`SourceMixer.steps_before`)."""

    def __init__(
        self,
        mixer: SourceMixer,
        crops_cfg: CropsConfig,
        *,
        batch_size: int,
        seed: int,
        rank: int,
        world_size: int,
        start_step: int,
        max_steps: int | None,
    ) -> None:
        self.mixer, self.crops_cfg = mixer, crops_cfg
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.start_step, self.max_steps = start_step, max_steps

    def __len__(self) -> int:
        """The whole run's steps, not the steps left: a resumed Lightning run restores its in-epoch batch count
        (start_step) and ends the epoch when that count reaches this length, so `max_steps - start_step` ended a run
        resumed before its halfway point early and then read this loader again from start_step."""
        if self.max_steps is None:
            raise TypeError("the SSL loader is infinite (max_steps=None)")
        return max(0, self.max_steps)

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int]]]:
        steps = itertools.count(self.start_step) if self.max_steps is None else range(self.start_step, self.max_steps)
        b, w, r = self.batch_size, self.world_size, self.rank
        done = self.mixer.steps_before(self.start_step)  # each source's earlier batches: its own step counter
        for step in steps:
            src = self.mixer.source_for_step(step)
            cs = choose_crop_set(self.crops_cfg, self.seed, step)
            base = done[src] * b * w + r * b
            done[src] += 1
            yield [(step, base + j, src, cs) for j in range(b)]


class _SSLCollate:
    def __init__(
        self, seed: int, rank: int, patch_size: int, crops_cfg: CropsConfig, transforms: Sequence[MultiCropTransform]
    ) -> None:
        self.seed, self.rank, self.patch_size = seed, rank, patch_size
        self.mask_ratio = tuple(crops_cfg.mask_ratio)
        self.mask_probability = crops_cfg.mask_probability
        self.max_block_fraction = crops_cfg.mask_max_block_fraction
        self.transforms = list(transforms)
        self.on_device = crops_cfg.photometric == "device"  # "auto" undecided here (no consumer known): loader

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        out = collate_ssl(
            samples,
            step=samples[0]["_step"],
            source=samples[0]["_source"],
            seed=self.seed,
            rank=self.rank,
            patch_size=self.patch_size,
            mask_ratio=self.mask_ratio,  # type: ignore[arg-type]
            mask_probability=self.mask_probability,
            max_block_fraction=self.max_block_fraction,
        )
        out["photometric"] = self.transforms[samples[0]["_src"]]
        if self.on_device:  # SSLModule finishes the batch after moving it to the accelerator
            return out
        with _one_thread():
            return finish_photometric(out)


def _worker_init(_: int) -> None:
    from geodino.train.stop import quiet_worker

    torch.set_num_threads(1)  # workers each decode/crop one batch; intra-op threads would oversubscribe
    quiet_worker()  # Ctrl-C and SIGTERM are the main process's: it stops the run after a step and saves it


def _legacy_configs(sources: Any, kw: dict[str, Any]) -> tuple[DataConfig, CropsConfig]:
    """Build configs from the keyword form `build_ssl_loader(paths, kind=..., sensor=..., ...)`."""
    kind = kw.pop("kind", "auto")
    paths = [sources] if isinstance(sources, str) else list(sources)
    if kind == "auto":
        from geodino.data.cube_open import is_cube_store

        p = str(paths[0]).lower().rstrip("/")  # a cube by suffix (.zarr, .nc, .nc4, ...) or a NetCDF's first bytes
        kind = "cube" if is_cube_store(str(paths[0])) else "tar" if p.endswith(".tar") else "raster"
        if kind == "raster":
            from geodino.data.paths import RASTER_EXTS, resolve_paths

            try:
                resolve_paths(paths, RASTER_EXTS, what="raster")
            except InputError:
                kind = "images"
    kind = {"image": "images", "zarr": "cube"}.get(kind, kind)
    sensor = kw.pop("sensor", None)
    sensor = {"rgb": "imagenet"}.get(sensor, sensor)
    src = SourceConfig(type=kind, paths=[str(p) for p in paths], sensor=sensor, bands=kw.pop("bands", None))
    crops = CropsConfig()
    mapping = {
        "global_crops_size": "global_size",
        "local_crops_size": "local_size",
        "local_crops_number": "n_local",
        "global_crops_scale": "global_scale",
        "local_crops_scale": "local_scale",
    }
    for old, new in mapping.items():
        if old in kw:
            val = kw.pop(old)
            setattr(crops, new, list(val) if isinstance(val, tuple) else val)
    if "horizontal_flips" in kw:  # the official name: horizontal flips, on or off, never vertical ones or rotations
        crops.flips, crops.vflips, crops.rot90 = bool(kw.pop("horizontal_flips")), False, False
    for key in list(kw):
        if hasattr(src, key):
            setattr(src, key, kw.pop(key))
    if kw:
        raise ConfigError(f"build_ssl_loader got {plural(len(kw), 'unknown option')}: {', '.join(sorted(kw))}")
    return DataConfig(sources=[src]), crops


COARSE_FACTOR = 2.0
"""Global crops that shrink the tile's pixels more than this (at the largest crop) are warned about."""
_COARSE_SAID: set[str] = set()  # the coarse-tile warnings this process has shown (each is shown once)


def warn_coarse_tiles(data_cfg: DataConfig, crops_cfg: CropsConfig) -> list[str]:
    """Warn (once per source and process; all returned, for tests) when a raster or datacube source's tiles are
    much larger than the global crops cut from them: a crop covers sqrt(global_scale) of the tile's side and is
    resized to global_size, so 256 px tiles (the source default, sized for the official 224 px crops) under the
    small recipe's 48 px crops are seen 3-5x coarser than `geodino embed` later feeds the model its native pixels,
    and each step reads ~28x the pixels it uses (measured by a user: 2.5 s instead of 0.42 s a step, the loss stuck
    at ln K). Image chips are read whole at their own size and are not checked here; tiles in metres need the
    scene's resolution."""
    import math
    import warnings

    sets: list[Any] = crops_cfg.crop_sets or [crops_cfg]  # CropSet or CropsConfig: the sizes both carry
    largest = max(cs.global_size for cs in sets)
    low, high = (float(v) for v in crops_cfg.global_scale)
    said = []
    for i, src in enumerate(data_cfg.sources):
        if src.type not in ("raster", "cube") or src.tile_units != "px":
            continue
        near, far = src.tile_size * math.sqrt(high) / largest, src.tile_size * math.sqrt(low) / largest
        if min(near, far) <= COARSE_FACTOR:
            continue
        fit = max(16, math.ceil(largest * 4 / 3 / 16) * 16)
        msg = (
            f"data source {src.name or f'source{i}'}: tiles of {src.tile_size:g} px are cut into global crops of "
            f"{math.sqrt(low) * src.tile_size:.0f}-{math.sqrt(high) * src.tile_size:.0f} px resized to {largest} px, "
            f"so the model learns the scene {min(near, far):.1f}-{max(near, far):.1f}x coarser than embed and the "
            f"probes feed it native pixels, and reads far more pixels than it uses; set tile_size: {fit} on the "
            "source (about 4/3 of crops.global_size), or larger crops"
        )
        if msg not in _COARSE_SAID:  # once per process: pretraining builds its loader twice (first-batch probe,
            _COARSE_SAID.add(msg)  # then training), and filter changes between the two reset Python's own memory
            warnings.warn(msg, stacklevel=3)
        said.append(msg)
    return said


def decode_min_area(crops_cfg: CropsConfig) -> int:
    """The fewest pixels a web image may be decoded to (`fast_decode` JPEGs) without any crop being upsampled.

    A crop of scale s and aspect a (in [r0, r1], r0 <= 1 <= r1) of an image of A pixels is sqrt(s A a) wide and
    sqrt(s A / a) high (`crops._rrc_box`), so its shorter side is >= sqrt(s A q), q = min(r0, 1 / r1). It is cut
    to an output of S px with no upsampling when sqrt(s A q) >= S, i.e. A >= S^2 / (s q), with s the smallest
    scale of its kind: global crops (and Gram crops, the same boxes) at global_scale[0], local ones at
    local_scale[0]. One pixel of margin covers the box's rounding. An image reduced to this area still cuts every
    crop from at least as many pixels as it outputs; one smaller than this at full size is not reduced at all.
    Defaults (224 px at 0.32, 96 px at 0.05, ratio 3/4..4/3): 250,907 px, so a 4000x3000 JPEG decodes at 1/4."""
    import math

    from geodino.data.crops import crop_sets

    q = min(float(crops_cfg.ratio[0]), 1.0 / float(crops_cfg.ratio[1]), 1.0)
    need = 0.0
    for cs in crop_sets(crops_cfg):
        big = max(cs.global_size, cs.gram_size or 0)
        if crops_cfg.n_global:
            need = max(need, (big + 1) ** 2 / (float(crops_cfg.global_scale[0]) * q))
        if crops_cfg.n_local:
            need = max(need, (cs.local_size + 1) ** 2 / (float(crops_cfg.local_scale[0]) * q))
    return math.ceil(need)


def build_ssl_loader(
    data_cfg: DataConfig | Sequence[str] | str,
    crops_cfg: CropsConfig | None = None,
    *,
    batch_size: int,
    num_workers: int = 2,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    start_step: int = 0,
    patch_size: int = 16,
    max_steps: int | None = None,
    mask_ratio: Sequence[float] | None = None,
    mask_probability: float | None = None,
    prefetch_factor: int = 2,
    progress: bool = True,
    pin_memory: bool = False,
    **legacy: Any,
) -> torch.utils.data.DataLoader:
    """The DataLoader of SSL batches (dicts as in CONTRIBUTING.md "SSL batches") for this rank.

    `pin_memory`: batches in page-locked memory, for training on a CUDA GPU (the trainers set it there): the crops
    of a `sat_vits16` batch are ~134 MB, and copied from pageable memory they took 15 % of the GPU's time in an
    H200 profile (gpu.sh part 3), synchronously; from pinned memory the copy is asynchronous.

    Infinite unless `max_steps` is given (then steps `start_step .. max_steps-1`). `mask_ratio` and
    `mask_probability` override `crops_cfg.mask_*` (the iBOT config of the training recipe). A list of paths
    with keywords (`kind`, `sensor`, `bands`, `global_crops_size`, ...) is accepted for a one-source loader.
    """
    import dataclasses

    if not isinstance(data_cfg, DataConfig):
        data_cfg, default_crops = _legacy_configs(data_cfg, dict(legacy))
        crops_cfg = crops_cfg or default_crops
    elif legacy:
        raise ConfigError(f"build_ssl_loader got {plural(len(legacy), 'unknown option')}: {', '.join(sorted(legacy))}")
    crops_cfg = dataclasses.replace(crops_cfg) if crops_cfg is not None else CropsConfig()
    if mask_ratio is not None:
        crops_cfg.mask_ratio = [float(v) for v in mask_ratio]
    if mask_probability is not None:
        crops_cfg.mask_probability = float(mask_probability)
    crops_cfg.validate()
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} must be in [0, world_size={world_size})")
    sets: list[tuple[str, Any]] = [(f"crops.crop_sets[{i}].", c) for i, c in enumerate(crops_cfg.crop_sets)] or [
        ("crops.", crops_cfg)
    ]
    # distillation learns the patch size from its teacher: checked here for both commands. Global crops carry the
    # iBOT masks on their patch grid, so they must fit it; local crops need not (the official high-res stage uses
    # 168 px at patch 16): the model drops their remainder as the official conv does (`trim_to_patch_grid`)
    for where, cs in sets:
        size = cs.global_size
        if size < patch_size or size % patch_size:  # 0 passed `size % patch` and stopped in a resize's traceback
            near = sorted({v for v in (size // patch_size * patch_size, -(-size // patch_size) * patch_size) if v > 0})
            raise ConfigError(
                f"{where}global_size={size} is not a multiple of the patch size {patch_size}; use one, e.g. "
                f"{' or '.join(map(str, near or [patch_size]))}"
            )
        if crops_cfg.n_local and cs.local_size < patch_size:
            raise ConfigError(
                f"{where}local_size={cs.local_size} is smaller than one patch ({patch_size} px); use at least "
                f"{patch_size}"
            )
    if rank == 0:
        warn_coarse_tiles(data_cfg, crops_cfg)
    sources = build_sources(data_cfg, progress=progress and rank == 0)
    for s in sources:  # web images: JPEGs decoded no smaller than every crop needs (`fast_decode`)
        if hasattr(s, "decode_min_area"):
            s.decode_min_area = decode_min_area(crops_cfg)
    norm = get_sensor(data_cfg.norm_sensor) if data_cfg.norm_sensor else None
    transforms = [MultiCropTransform(crops_cfg, s.sensor, norm) for s in sources]
    mixer = SourceMixer([s.name for s in sources], [c.weight for c in data_cfg.sources], seed)
    dataset = _SSLDataset(sources, transforms, seed, workers=num_workers > 0)
    batches = _SSLBatches(
        mixer,
        crops_cfg,
        batch_size=batch_size,
        seed=seed,
        rank=rank,
        world_size=world_size,
        start_step=start_step,
        max_steps=max_steps,
    )
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"prefetch_factor": prefetch_factor, "persistent_workers": True, "worker_init_fn": _worker_init}
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_SSLCollate(seed, rank, patch_size, crops_cfg, transforms),
        pin_memory=pin_memory,
        **kwargs,
    )
    loader.sources = sources
    loader.mixer = mixer
    return loader


def check_sources_have_pixels(sources: Sequence[Any], seed: int, n: int = 16) -> None:
    """Stop when a source's first `n` samples (random tiles: each already the best of its redraws; grid tiles and
    images: at most one pass) hold no valid pixel at all: an archive that is nodata everywhere (a wrong `nodata`,
    an empty ROI, blank files) would otherwise train on fill colour without a word."""
    for source in sources:
        random = getattr(getattr(source, "tiles", None), "sampling", None) == "random"
        samples = [source.get(i, seed) for i in range(n if random else min(n, max(1, len(source))))]
        masks = [np.asarray(smp["valid"]) for smp in samples if "valid" in smp]
        if len(masks) < len(samples) or any(m.any() for m in masks):  # images without a mask count as valid
            continue
        files = list(getattr(getattr(source, "archive", None), "files", None) or [])
        where = f" ({files[0]}{f' and {len(files) - 1} more' if len(files) > 1 else ''})" if files else ""
        raise InputError(
            f"source {source.name!r}{where}: {plural(len(samples), 'sampled tile')} "
            f"{'holds' if len(samples) == 1 else 'hold'} no valid pixel, every pixel read is nodata; check the files, "
            "their nodata value (set `nodata:` in the source to override it) and the ROI"
        )


# ------------------------------------------------------------------------------------------------------------------
# Plain samples (stats, probes, previews)
# ------------------------------------------------------------------------------------------------------------------
class SampleDataset(torch.utils.data.Dataset):
    """Samples of one source by index: `image` normalised (or reflectance with `standardize=False`), `valid`."""

    def __init__(self, source: Any, *, seed: int = 0, standardize: bool = True, norm_sensor: Any = None) -> None:
        self.source = source
        self.seed = seed
        self.standardize = standardize
        self.norm = norm_for_data(get_sensor(norm_sensor) if norm_sensor else None, source.sensor)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.source.get(int(index), self.seed)
        image = torch.from_numpy(np.ascontiguousarray(s["image"]))
        valid = torch.from_numpy(np.ascontiguousarray(s["valid"]))
        if self.standardize:
            image = self.norm.standardize(image)
            image = torch.where(valid, image, torch.zeros((), dtype=image.dtype))
        out = {"image": image, "valid": valid, "index": int(index)}
        for key in ("crs", "transform", "bands", "path", "time"):
            if key in s:
                out[key] = s[key]
        return out


def _collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in samples[0]:
        vals = [s[key] for s in samples]
        if isinstance(vals[0], torch.Tensor) and all(v.shape == vals[0].shape for v in vals):
            out[key] = torch.stack(vals)
        elif key == "index":
            out[key] = torch.tensor(vals)
        else:
            out[key] = vals
    return out


def build_sample_loader(
    data_cfg: DataConfig,
    *,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    source: int | str = 0,
    standardize: bool = True,
    length: int | None = None,
) -> torch.utils.data.DataLoader:
    """A finite loader over one source: indices rank, rank + w, ... < `length` (default: the source's length).

    Grid sources visit every tile once across ranks and workers (no duplicates); random sources give
    `length` deterministic tiles, by default one nominal pass (`TileSampler.__len__`): each scene's possible tile
    origins ((H - h + 1) x (W - w + 1) px, or its ROI part's pixels) over the tile's pixels, summed; fewer than its
    area holds (a 791 x 718 px scene gives 4 tiles of 256 px, not 9). Non-tensor fields (`crs`, `transform`,
    `bands`) are collated as lists.
    """
    cfg = DataConfig(sources=list(data_cfg.sources), norm_sensor=data_cfg.norm_sensor, shuffle=data_cfg.shuffle)
    cfg.validate()
    idx = source if isinstance(source, int) else [s.name for s in cfg.sources].index(source)
    src = build_source(cfg.sources[idx], index=idx, shuffle=cfg.shuffle)
    dataset = SampleDataset(src, seed=seed, standardize=standardize, norm_sensor=cfg.norm_sensor)
    n = len(src) if length is None else int(length)
    indices = list(range(rank, n, world_size))
    kwargs: dict[str, Any] = {"worker_init_fn": _worker_init} if num_workers > 0 else {}
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate_samples,
        **kwargs,
    )
