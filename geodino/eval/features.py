"""Frozen feature extraction for probes, with an on-disk cache.

A probe that trains a head on features (kNN, linear, logistic regression) runs the backbone once per image:
`extract_features` returns, for each chosen block, the CLS token and the average of the patch tokens, and stores
them under a key made of the backbone fingerprint, its input mean/std, the dataset identity, the input transform and
the layers. A second run (another head, another lr sweep, another seed) reads the cache instead of the backbone; any
change to weights, normalisation, data, resize or layers changes the key, so a stale cache is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from geodino.backbones.device import weights_device
from geodino.errors import ConfigError, InputError, plural
from geodino.io import atomic_path

# bump when the stored layout or the extraction maths change (2: photos read upright by EXIF; 3: keys name every
# non-float32 dtype, and entries an eager bf16 GPU run cached under a float32 key, which nothing in them marks, go)
CACHE_VERSION = 3


@dataclass
class FeatureConfig:
    """How images become features: which blocks, at which input size, how fast, and whether to cache."""

    layers: Any = "four_last"  # "last", "four_last", "four_even" or a list of block indices
    image_size: int = 0  # square resize before the backbone; 0 = native size (rounded up to the patch size)
    batch_size: int = 64
    num_workers: int = 0
    cache: bool = True
    cache_dir: str = ""  # "" = the runner's OUT/feature_cache (from Python: default_cache_dir)
    # inference path: auto | off | float32 | float32-ieee | float32-mkl | bfloat16 | int8 (geodino.models.frozen)
    fast: str = "auto"

    def __post_init__(self) -> None:
        """A fast-path mode none of `MODES` names is refused here, naming `features.fast` (a suite names it
        `tasks.<name>.features.fast`), when the config is read: it was refused only once its task extracted, after
        the suite's earlier tasks had run, as 'fast path mode=...' naming no key. The value is kept as written."""
        from geodino.models.fast_choice import fast_mode

        fast_mode(self.fast, "features.fast")
        from geodino.backbones.layers import LAYER_SETS

        if isinstance(self.layers, str) and self.layers.strip().lower() not in LAYER_SETS:  # named no key, and
            raise ConfigError(  # only once the task extracted, after the suite's earlier tasks
                f"features.layers={self.layers!r} is not a layer set; use one of {', '.join(LAYER_SETS)}, a count "
                "of last blocks (2) or a list of block indices ([-4, -1])"
            )
        if int(self.batch_size) < 1:  # the DataLoader refused it with a traceback, after the backbone loaded
            raise ConfigError(f"features.batch_size={self.batch_size} must be >= 1 (images per forward pass, e.g. 64)")
        from geodino.cpus import READERS_PER_CPU, most_readers

        most = most_readers()
        if not 0 <= int(self.num_workers) <= most:  # the DataLoader's traceback, or minutes starting 100000 readers
            raise ConfigError(
                f"features.num_workers={self.num_workers} must be in 0..{most} (reader processes, at most "
                f"{READERS_PER_CPU} per CPU here)"
            )


@dataclass
class FeatureSet:
    """Per-image features of one dataset split: `cls` and `patch_mean` are [N, L, D] (L = chosen layers, in order),
    `targets` is [N] long (single-label) or [N, K] float (multi-label)."""

    cls: torch.Tensor
    patch_mean: torch.Tensor
    targets: torch.Tensor
    layers: list[int] | str
    key: str = ""
    from_cache: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.cls.shape[0]

    def linear_input(self, n_last_blocks: int = 1, avgpool: bool = False) -> torch.Tensor:
        """DINOv2/v3 linear-probe input: CLS of the last n chosen blocks, concatenated with the average-pooled
        patch tokens of the last block when `avgpool`."""
        n = min(n_last_blocks, self.cls.shape[1])
        parts = [self.cls[:, -n:].flatten(1)]
        if avgpool:
            parts.append(self.patch_mean[:, -1])
        return torch.cat(parts, dim=1).float()


def resolve_image_size(image_size: int, native: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """The (H, W) fed to the backbone: `image_size` squared, or the native size rounded up to a patch multiple."""
    if image_size < 0:
        raise ConfigError(f"features.image_size={image_size} must be >= 0 (0 = native size)")
    if image_size:
        if image_size % patch_size:
            raise ConfigError(
                f"features.image_size={image_size} is not a multiple of the patch size {patch_size}; "
                f"use {((image_size + patch_size - 1) // patch_size) * patch_size}"
            )
        return image_size, image_size
    h, w = native
    return -(-h // patch_size) * patch_size, -(-w // patch_size) * patch_size


def check_band_order(backbone: Any, data_bands: list[str], dataset: str, sensor: Any = None) -> None:
    """Refuse data whose named bands are the backbone's recorded bands in another order: channels are matched by
    position, so each band would feed another band's weights (e.g. B8A and B09 swapped, or BGR into RGB). Names
    compare as `geodino embed` compares them (`geodino.backbones.band_order`: red = R, the data `sensor`'s aliases:
    B04 = red), so a backbone adapted to blue, green, red (`backbone_bands`) is refused B04, B03, B02 data too."""
    from geodino.backbones.band_order import backbone_sensor, known_bands, other_order

    want = known_bands(backbone)
    have = [str(b) for b in data_bands]
    order = other_order(have, want, sensor=sensor or None, src_sensor=backbone_sensor(backbone))
    if want is not None and order is not None:
        raise InputError(
            f"{dataset} delivers bands {','.join(have)} but backbone {getattr(backbone, 'spec', '')} takes "
            f"{','.join(want)}: the same bands in another order; set the task's data.bands="
            f"[{', '.join(have[i] for i in order)}]"
        )


def band_mismatch_message(backbone: Any, n_data: int, data_bands: list[str], dataset: str) -> str:
    """The one-line error for a backbone whose input band count differs from the data's."""
    spec = getattr(backbone, "spec", "the backbone")
    names = ",".join(data_bands[:13])
    want = int(backbone.in_chans)
    if want == 3:
        example = " (e.g. [rgb])"
    elif n_data > want and len(data_bands) >= want:
        example = f" (e.g. [{', '.join(data_bands[:want])}])"
    else:
        example = ""
    select = (
        f", or select {plural(want, 'band')} of the data with the task's data.bands (tasks.NAME.data.bands){example}"
        if n_data > want
        else ""
    )
    return (
        f"backbone {spec} takes {plural(want, 'band')} but {dataset} has {n_data} ({', '.join(data_bands[:6])}"
        f"{', ...' if len(data_bands) > 6 else ''}): adapt the backbone's patch embedding to the data's bands "
        f"(suite key backbone_bands=[{names}], i.e. load_backbone(spec, bands=[...]); '?bands={n_data}' for an "
        f"arch: spec){select}"
    )


class _Resized(Dataset):
    """Wraps a probe dataset: resizes `image` to a fixed size (bilinear, antialiased) and keeps the target."""

    def __init__(self, ds: Dataset, size: tuple[int, int], target_key: str, native: tuple[int, int] | None) -> None:
        self.ds, self.size, self.target_key, self.native = ds, size, target_key, native

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.ds[i]
        img = s["image"].float()
        if self.native is not None and tuple(img.shape[-2:]) != self.native:
            files = getattr(self.ds, "sample_files", lambda: None)()  # name the odd image where there is a file
            which = f" ({files[i]} in {self.ds.root})" if files else ""  # type: ignore[attr-defined]
            raise InputError(
                f"images of {getattr(self.ds, 'name', 'the dataset')} have different sizes ({self.native} and "
                f"{tuple(img.shape[-2:])}{which}); set features.image_size (e.g. 224) to resize them"
            )
        if tuple(img.shape[-2:]) != self.size:
            img = F.interpolate(img[None], size=self.size, mode="bilinear", antialias=True, align_corners=False)[0]
        return img, torch.as_tensor(s[self.target_key])


def cache_key(backbone: Any, dataset_key: str, transform: str, layers: Any) -> str:
    """sha256 over everything that determines the features (weights, input normalisation, data, transform, layers,
    code version). The normalisation is part of it because the same weights probed with another sensor's mean/std
    (`backbone_sensor`) give other features while the weight fingerprint stays the same."""
    norm = [
        [round(float(v), 8) for v in t.flatten().tolist()]
        for t in (getattr(backbone, "mean", None), getattr(backbone, "std", None))
        if isinstance(t, torch.Tensor)
    ]
    payload = json.dumps(
        {
            "fingerprint": str(getattr(backbone, "fingerprint", "")),
            "normalize": norm,
            "spec": str(getattr(backbone, "spec", "")),
            "dataset": dataset_key,
            "transform": transform,
            "layers": layers if isinstance(layers, str) else [int(i) for i in layers],
            "blocks": _blocks(backbone, layers),
            "version": CACHE_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _blocks(backbone: Any, layers: Any) -> list[int] | None:
    """The block indices a layer set name stands for on this backbone, so that a change in how a name resolves
    (cd448c2 changed `four_even` on depths not divisible by 4) gives another key; None when it cannot resolve."""
    n_blocks = getattr(backbone, "n_blocks", None)
    if not isinstance(layers, str) or not isinstance(n_blocks, int):
        return None
    from geodino.backbones import layers as layer_sets

    try:
        return layer_sets.layer_indices(layers, n_blocks, warn_short=False)  # the feature run itself warns
    except ConfigError:
        return None  # the feature run itself reports the bad name


def default_cache_dir() -> Path:
    """The feature cache of calls from Python that name no `cache_dir`: `features/` in geodino's user cache folder
    (`geodino.user_cache`: `$GEODINO_CACHE_DIR`, `$XDG_CACHE_HOME/geodino` or `~/.cache/geodino`)."""
    from geodino.user_cache import user_cache_dir

    return user_cache_dir("features")


@torch.inference_mode()
def extract_features(
    backbone: Any,
    dataset: Any,
    cfg: FeatureConfig | None = None,
    *,
    target_key: str = "label",
    cache_dir: str | Path | None = None,
    desc: str = "features",
    progress: bool = True,
    stand_in: int | None = None,
) -> FeatureSet:
    """CLS and average-pooled patch tokens of every image of `dataset` at the chosen layers, cached on disk.

    `dataset` yields probe samples (reflectance-scaled `image` [C,H,W] and `target_key`); `backbone` is a
    `geodino.backbones.FrozenBackbone` (anything with `features`, `normalize`, `patch_size`, `in_chans`,
    `fingerprint`). `stand_in`: the target of a sample that only stands in for an unreadable file (its row is
    dropped after), left out of the throughput line's image count. Raises InputError when the band count differs
    or image sizes vary at native size.
    """
    from contextlib import ExitStack

    from geodino.backbones.layers import layer_indices
    from geodino.embed.memory import check_image_batch
    from geodino.eval.feature_files import current_features, entry_tag, keep_record, take_record
    from geodino.inference import Throughput, fast_backbone, path_of, plan_path, runs_in, runs_on
    from geodino.models.frozen import FastPath
    from geodino.progress import progress_bar

    cfg = cfg or FeatureConfig()
    if len(dataset) == 0:
        raise InputError(f"dataset {getattr(dataset, 'name', '?')} ({getattr(dataset, 'split', '?')}) has no images")
    first = dataset[0]
    c, h, w = first["image"].shape
    bands = list(getattr(dataset, "bands", []) or [f"b{i + 1}" for i in range(c)])
    if c != backbone.in_chans:
        raise InputError(band_mismatch_message(backbone, c, bands, getattr(dataset, "name", "the data")))
    if getattr(dataset, "sensor", ""):  # names an adapter (or the user's data.sensor) vouches for, not guessed
        names = list(getattr(dataset, "bands", []) or [])
        check_band_order(backbone, names, getattr(dataset, "name", "the data"), getattr(dataset, "sensor", None))
    size = resolve_image_size(cfg.image_size, (h, w), backbone.patch_size)
    if cfg.image_size:
        check_image_batch(cfg.batch_size, c, max(size), "features.image_size (0: native) or features.batch_size")
    device = weights_device(backbone)
    # the fast inference path (geodino.models.frozen) for geodino ViTs; timm baselines and fast="off" stay eager. The
    # cache key names the numerics that will run (an amp backbone, or one accelerated before, runs other numerics than
    # `cfg.fast` alone says), decided before any weights are prepared: a cache hit never pays for preparing them.
    job: dict[str, Any] = {"mode": cfg.fast, "n_images": len(dataset), "image_size": size}
    planned = plan_path(backbone, **job) if hasattr(backbone, "model") else FastPath(False)
    layers = cfg.layers
    if isinstance(layers, int) and not isinstance(layers, bool):  # a count of last blocks: a TypeError here before
        layers = layer_indices(layers, int(getattr(backbone, "n_blocks", layers)))
    layers = layers if isinstance(layers, str) else [int(i) for i in layers]
    ds_key = getattr(dataset, "key", "")
    transform, key = _cache_entry(backbone, ds_key, size, runs_on(backbone, planned), device, layers)
    use_cache = cfg.cache and bool(ds_key)
    folder = Path(cache_dir or cfg.cache_dir or default_cache_dir()).expanduser()
    if use_cache and (folder / f"{key}.safetensors").is_file():
        read = _read_entry(folder / f"{key}.safetensors", key)
        if read is not None:  # the rows of image files replaced since (same size and mtime) are computed again
            from dataclasses import replace

            uncached = replace(cfg, cache=False)
            current = current_features(
                read[0],
                dataset,
                folder / f"{key}.safetensors",
                batch_size=cfg.batch_size,
                redo=lambda rows: extract_features(
                    backbone, rows, uncached, target_key=target_key, desc=desc, progress=progress, stand_in=stand_in
                ),
                save=_save,
                tag=read[1],
                written=read[2],
            )
            if current is not None:
                return current
    record = take_record(dataset) if use_cache else None  # before any pixel is read: a change meanwhile shows
    with ExitStack() as stack:
        fast = stack.enter_context(fast_backbone(backbone, **job)) if hasattr(backbone, "model") else planned
        # what runs is what was planned; should they ever differ, the entry is keyed on what ran
        transform, key = _cache_entry(backbone, ds_key, size, runs_in(backbone), device, layers)
        on_cuda = device.type == "cuda"  # asynchronous copies only where they are awaited below (not MPS's)
        loader = DataLoader(
            _Resized(dataset, size, target_key, None if cfg.image_size else (h, w)),
            batch_size=cfg.batch_size,
            shuffle=False,
            num_workers=cfg.num_workers,
            persistent_workers=False,
            pin_memory=on_cuda,  # page-locked batches: the non-blocking copy below is then asynchronous
        )
        cls_out: list[torch.Tensor] = []
        mean_out: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        bar = progress_bar(total=len(dataset), desc=desc, unit="img", disable=not progress, leave=False)
        speed = Throughput()
        try:
            for x, y in loader:
                x = backbone.normalize(x.to(device, non_blocking=True))
                maps, cls_tokens = backbone.features(x, layers=layers)  # autocasts the eager model where it should
                # copied to the host without waiting (into page-locked memory, from a GPU): a blocking copy per
                # batch waited for the GPU each time; all copies are awaited once, after the last batch
                cls_out.append(torch.stack([t.float() for t in cls_tokens], dim=1).to("cpu", non_blocking=on_cuda))
                mean_out.append(
                    torch.stack([m.float().mean(dim=(-2, -1)) for m in maps], dim=1).to("cpu", non_blocking=on_cuda)
                )
                targets.append(y)
                bar.update(len(x))
                speed.add(len(x) if stand_in is None else int((y != stand_in).sum()))
        finally:
            bar.close()
        ran = path_of(backbone) if hasattr(backbone, "model") else fast
    if on_cuda:  # the copies above have landed (and the throughput line counts the wait)
        torch.cuda.synchronize(device)
    cls_all, mean_all = torch.cat(cls_out), torch.cat(mean_out)
    if progress:
        print(speed.line(desc, ran), file=sys.stderr)
    fs = FeatureSet(
        cls=cls_all,
        patch_mean=mean_all,
        targets=torch.cat(targets),
        layers=layers,
        key=key,
        meta={
            "dataset": ds_key,
            "transform": transform,
            "fingerprint": str(getattr(backbone, "fingerprint", "")),
            "path": ran.name,
        },
    )
    if use_cache and _save(folder / f"{key}.safetensors", fs, tag := entry_tag(record)):
        keep_record(folder / f"{key}.safetensors", record, tag)
    return fs


def _cache_entry(
    backbone: Any, ds_key: str, size: tuple[int, int], dtype: str, device: torch.device, layers: Any
) -> tuple[str, str]:
    """The transform string a feature set records and its cache key, for features computed in `dtype`.

    Every lossy dtype (bfloat16, int8), on any device, gets its own entry, so a float32 run never reads features a
    bf16 run cached (a GPU's default bf16 autocast and `fast: float32` for fidelity) and vice versa; float32 keeps
    the plain key (`device` does not enter it), so caches written before stay valid."""
    transform = f"resize={size[0]}x{size[1]},bilinear,antialias;normalize=backbone"
    if dtype != "float32":
        transform += f";dtype={dtype}"
    return transform, cache_key(backbone, ds_key, transform, layers)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


# Cache folders a write into failed in this process (full disk, quota, no permission): caching into them is off for
# the rest of the run, so the warning is said once; `forget_unwritable_caches` starts over (each probe suite run).
_UNWRITABLE: set[str] = set()


def forget_unwritable_caches() -> None:
    """Try the cache folders that refused a write again (a new run: space may have been freed)."""
    _UNWRITABLE.clear()


def _save(path: Path, fs: FeatureSet, tag: str = "") -> bool:
    """Store `fs` in the cache, naming its record of files by `tag` (`feature_files.entry_tag`); False when it was
    not. The cache is optional: a write the storage refuses (a full disk, a quota, a read-only or forbidden folder)
    warns once per folder and the run goes on with the features in memory. The same features give the same bytes
    (`reproducible.save_safetensors_file`: safetensors wrote the metadata keys in Rust hash order, another in every
    process), so a cache entry can be checksummed and compared."""
    from geodino.models.checkpoints.reproducible import save_safetensors_file

    folder = path.parent
    if str(folder) in _UNWRITABLE:
        return False
    meta = {
        "key": fs.key,
        "layers": json.dumps(fs.layers),
        "meta": json.dumps(fs.meta, sort_keys=True),
        "version": str(CACHE_VERSION),
        **({"files": tag} if tag else {}),
    }
    tensors = {"cls": fs.cls.contiguous(), "patch_mean": fs.patch_mean.contiguous(), "targets": fs.targets.contiguous()}
    made = []  # the folders this write creates (deepest first): removed again when it fails, so a full disk leaves
    # no empty OUT/feature_cache/ behind (which also kept the CLI from removing the OUT it made)
    p = folder
    while not p.exists() and p != p.parent:
        made.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_safetensors_file(tensors, tmp, metadata=meta)
    except Exception as exc:
        reason = _refused(exc)
        if reason is None:
            raise
        import contextlib
        import warnings

        for p in made:
            with contextlib.suppress(OSError):  # one holding another run's entry stays
                p.rmdir()
        _UNWRITABLE.add(str(folder))
        warnings.warn(
            f"feature cache {folder} could not be written ({reason}); the features stay in memory for this run and "
            "are computed again next time: free space, or set cache_dir to a writable folder (features.cache=false "
            "turns the cache off)",
            stacklevel=3,
        )
        return False
    return True


def _refused(exc: BaseException) -> str | None:
    """Why the storage refused a cache write (an OSError, safetensors' error carrying the OS message, or the one-line
    error `make_dirs` gives for an unwritable folder), or None for any other error."""
    from geodino.storage_errors import storage_error

    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, InputError):  # the cache folder cannot be created or written (make_dirs)
        return str(exc)
    return str(exc) if storage_error(exc) is not None else None


def _load(path: Path, key: str) -> FeatureSet | None:
    """Read a cached FeatureSet; None (recompute) when the file is unreadable or of another version/key, or holds
    features of a bf16/int8 fast path under a key naming no dtype (written on a GPU before bf16 was keyed apart)."""
    read = _read_entry(path, key)
    return None if read is None else read[0]


def _read_entry(path: Path, key: str) -> tuple[FeatureSet, str, int] | None:
    """`_load`, the tag of the record of files the entry names (`feature_files.entry_tag`; "" for none), read from
    the same open file, and that file's mtime (when it was written): a run beside this one may replace the entry at
    any time, so the file is stat'ed before and after the read, and one replaced in between is no hit."""
    from safetensors import safe_open

    try:
        before = _entry_stat(path)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key or meta.get("version") != str(CACHE_VERSION):
                return None
            made = json.loads(meta.get("meta", "{}"))
            lossy = any(d in str(made.get("path", "")) for d in ("bfloat16", "int8"))
            if lossy and "dtype=" not in str(made.get("transform", "")):
                return None
            t = {k: f.get_tensor(k) for k in ("cls", "patch_mean", "targets")}
        if _entry_stat(path) != before:  # replaced while read: which write's bytes were served is unknown
            return None
    except Exception:  # a truncated or foreign file is simply recomputed
        return None
    fs = FeatureSet(
        cls=t["cls"],
        patch_mean=t["patch_mean"],
        targets=t["targets"],
        layers=json.loads(meta["layers"]),
        key=key,
        from_cache=True,
        meta=made,
    )
    return fs, str(meta.get("files", "")), before[1]


def _entry_stat(path: Path) -> tuple[int, int, int, int]:
    """(inode, mtime, ctime, size) of a cache entry: a replacement (a new inode) or a rewrite in place changes it."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size
