"""Training a probe head on frozen features, shared by the dense probes (segmentation, canopy height, detection).

Extracting features (normalised, padded to the patch grid), the tile feature store (in memory, on disk, or
re-extracted every batch), seeding, freezing the backbone, and the head training loop (AdamW, PANGAEA's step decay
at 60 % and 90 %).

Devices, one rule for the three probes: a head trains and predicts where the backbone's weights are
(`head_device`: a backbone on a GPU trains its UPerNet, DPT or detector there). The feature store stays on the host
(features are copied back once per extraction); each training batch and its targets go to the head's device
(`to_device`), and predictions come back to the host (`to_host`) before they are stitched and scored.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.backbones.device import weights_device
from geodino.errors import ConfigError, InputError


class Backbone(Protocol):
    """What the probes use of `geodino.backbones.FrozenBackbone`."""

    patch_size: int
    embed_dim: int
    n_blocks: int

    def normalize(self, x: Tensor) -> Tensor: ...

    def features(self, x: Tensor, layers: Any = "last", norm: bool = True) -> tuple[list[Tensor], list[Tensor]]: ...


# ----------------------------------------------------------------------------------------------- devices

HOST = torch.device("cpu")


def head_device(backbone: Any) -> torch.device:
    """Where a probe's head trains and predicts: the device of the backbone's weights (where its features come
    out), the host for a backbone without weights (a parameter-free baseline computes where its input is)."""
    return weights_device(backbone) if callable(getattr(backbone, "parameters", None)) else HOST


def to_device(obj: Any, device: torch.device | str) -> Any:
    """`obj` (a tensor, or lists, tuples and dicts of them; anything else as it is) with its tensors on `device`:
    a training batch and its targets, moved to the head. A tensor already there is returned as it is. Host tensors
    cross to a CUDA GPU from page-locked memory without waiting (a blocking copy waited for the GPU to finish the
    previous step at every step of a head's training, so the host could not prepare the next batch meanwhile)."""
    if isinstance(obj, Tensor):
        if obj.device.type == "cpu" and torch.device(device).type == "cuda":
            return obj.pin_memory().to(device, non_blocking=True)
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def to_host(obj: Any) -> Any:
    """`obj` with its tensors copied to the host (`.cpu()`; no copy for one already there): predictions and
    features leave the accelerator before numpy, the CPU accumulators of sliding windows and the float64 metrics
    (which MPS lacks)."""
    if isinstance(obj, Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_host(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_host(v) for v in obj)
    return obj


def host_state(module: nn.Module) -> dict[str, Any]:
    """`module.state_dict()` with its tensors on the host, so a head trained on a GPU loads anywhere (replaced in
    place: the dict keeps its `_metadata`, which `load_state_dict` reads)."""
    state = module.state_dict()
    for k, v in state.items():
        state[k] = v.cpu()
    return state


# ----------------------------------------------------------------------------------------------- features


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


def _write_whole(f: Path, a: np.ndarray) -> None:
    """Write `a` to `f` under a temporary name renamed when complete (`io.atomic_path`), so no partial `.npy` is ever
    under `f`; an error removes the temporary and, when the storage refused the write, names `f`. No sweep per file
    (the store sweeps its folder once) and no fsync: a cache, rewritten by every run."""
    from geodino.io import atomic_path

    with atomic_path(f, durable=False, sweep=False) as tmp, open(tmp, "wb") as fh:
        np.save(fh, a)


class FeatureStore:
    """Frozen features of equal-size tiles, filled batch by batch (`add`), read back by tile index (`get`).

    `memory` keeps float16 tensors; `disk` writes float16 `.npy` chunks under `folder` and memory-maps them, so
    tile sets larger than RAM train heads without re-running the backbone each epoch; `none` keeps the tiles
    (float16) and re-extracts features every batch (least memory for features, slowest). What it keeps is on the
    host whatever the backbone's device (features cast to float16 there, then copied back once); `get` hands a
    batch to the device the head is on.
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
        self._files: list[Path] = []  # the files `disk` wrote
        self._made: list[Path] | None = None  # the folders its first write created (deepest first)

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
        from geodino.progress import progress_bar

        store = cls(backbone, layers, mode, folder)
        n = tiles.shape[0]
        for start in progress_bar(
            range(0, n, batch_size), desc=desc, leave=False, disable=not progress or n <= batch_size
        ):
            store.add(tiles[start : start + batch_size])
        return store

    def add(self, tiles: Tensor) -> None:
        """Append a batch of tiles [B,C,H,W] (reflectance): their features, or the tiles themselves for `none`."""
        c = len(self._chunks)
        if self.mode == "none":
            self._chunks.append(([to_host(tiles.half())], []))
        else:
            maps, cls = extract(self.backbone, tiles, self.layers)
            # float16 on the backbone's device (half the bytes to copy), then on the host once
            maps, cls = to_host([m.half() for m in maps]), to_host([t.half() for t in cls])
            if self.mode == "memory":
                self._chunks.append((maps, cls))
            else:
                self._chunks.append(self._save_chunk(c, maps, cls))
        self._index.extend((c, r) for r in range(tiles.shape[0]))

    def _save_chunk(self, c: int, maps: list[Tensor], cls: list[Tensor]) -> tuple[list[Any], list[Any]]:
        """Write chunk `c`'s arrays under `folder` and map them back. Each file is written whole or not at all
        (`_write_whole`: a full disk or a kill leaves no partial `.npy` under a final name). A write the storage
        refuses removes what this store wrote (never read by another run) and the folders it made, then raises
        the refusal naming the file, which the CLI says in one line."""
        from geodino.io import StorageError, make_dirs
        from geodino.storage_errors import storage_error

        assert self.folder is not None
        arrays: tuple[list[Any], list[Any]] = ([], [])
        try:
            if self._made is None:  # the first write: make the folder (recording what it creates, deepest first)
                self._made, p = [], self.folder
                while not p.exists() and p != p.parent:
                    self._made.append(p)
                    p = p.parent
                make_dirs(self.folder, what="feature cache folder")
                from geodino.io_temps import sweep_held_folder

                sweep_held_folder(self.folder, held=lambda target: False)  # killed runs' temporaries, once
            for kind, group in (("map", maps), ("cls", cls)):
                for i, t in enumerate(group):
                    f = self.folder / f"{kind}{i}_{c:06d}.npy"
                    arrays[0 if kind == "map" else 1].append(self._write_mapped(f, t.numpy()))
        except (OSError, StorageError) as exc:
            if isinstance(exc, StorageError) or storage_error(exc) is not None:
                self._discard_files()
            raise
        return arrays

    def _write_mapped(self, f: Path, a: np.ndarray) -> np.ndarray:
        """Write `a` to `f` whole and memory-map it back; a file that does not read back as `a`'s shape and dtype
        (truncated or replaced meanwhile) is written once more, then refused in one line."""
        for _ in range(2):
            self._files.append(f)
            _write_whole(f, a)
            try:
                m = np.load(f, mmap_mode="r")
            except (ValueError, EOFError, OSError):
                continue
            if m.shape == a.shape and m.dtype == a.dtype:
                return m
        raise InputError(
            f"feature cache file {f} does not read back as written (is another run writing {f.parent}?); give each "
            "run its own --out, then run the same command again"
        )

    def _discard_files(self) -> None:
        """Remove the files this store wrote and the folders its first write created (those left empty)."""
        for f in self._files:
            with contextlib.suppress(OSError):
                f.unlink()
        self._files.clear()
        for p in self._made or []:
            with contextlib.suppress(OSError):  # one holding another run's entry stays
                p.rmdir()

    def close(self) -> None:
        """Drop the features once the head is trained: `disk` removes its chunk files (and the folders it made), which
        no later run reads (each run extracts again); they were as large as all training features, left per run."""
        self._chunks.clear()
        self._index.clear()
        self._discard_files()

    def __len__(self) -> int:
        return len(self._index)

    def _gather(self, group: int, layer: int, idx: Sequence[int], device: torch.device | str) -> Tensor:
        rows = []
        for i in idx:
            c, r = self._index[i]
            x = self._chunks[c][group][layer][r]
            rows.append(x if isinstance(x, Tensor) else torch.from_numpy(np.array(x)))
        return to_device(torch.stack(rows), device).float()  # float16 crosses to the device, float32 there

    def get(self, idx: Sequence[int], device: torch.device | str = HOST) -> tuple[list[Tensor], list[Tensor]]:
        """Features (float32) of the tiles `idx` on `device` (the host unless told): (maps per layer [B,D,h,w],
        CLS per layer [B,D])."""
        idx = list(idx)
        if self.mode == "none":
            return to_device(extract(self.backbone, self._gather(0, 0, idx, HOST), self.layers), device)
        n_maps, n_cls = len(self._chunks[0][0]), len(self._chunks[0][1])
        maps = [self._gather(0, i, idx, device) for i in range(n_maps)]
        return maps, [self._gather(1, i, idx, device) for i in range(n_cls)]


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

    Each batch of features goes to the head's device (`loss_fn` moves the targets of `idx` there). AdamW with
    PANGAEA's step decay (x0.1 at 60 % and 90 % of the steps); a per-epoch progress bar unless `progress` is off
    (the suite's `progress=false`). Returns the mean loss per epoch. Raises TrainingError on a non-finite loss.
    """
    from geodino.errors import TrainingError
    from geodino.progress import progress_bar

    gen = seed_everything(seed)
    device = weights_device(head)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n = len(store)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.6 * total), int(0.9 * total)], gamma=0.1)
    history: list[float] = []
    bar = progress_bar(range(epochs), desc=desc, leave=False, disable=not progress)
    for epoch in bar:
        head.train()
        perm = torch.randperm(n, generator=gen).tolist()
        losses = []
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            if len(idx) == 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in head.modules()):
                # BatchNorm cannot train on one value per channel (UPerNet's 1x1 pyramid pool on a single sample):
                # add the epoch's first tile, the same one when there is a single training tile
                idx = idx + perm[:1]
            maps, cls = store.get(idx, device)
            loss = loss_fn(head, maps, cls, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach())
        # read once per epoch: the check and the float of every step each waited for the GPU (a head that went
        # non-finite is not kept: the error stops the probe at the end of the epoch)
        values = torch.stack(losses).float().tolist()
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            raise TrainingError(f"non-finite loss {bad[0]} at epoch {epoch}; lower lr (now {lr})")
        history.append(float(np.mean(values)))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    head.eval()
    return history


# a dense head trained for fewer optimiser steps than this, with no explicit min_steps, is warned about (canopy:
# 60 steps left a DPT head at R2 -0.08, 300 reached 0.83; segmentation: 3 steps ended at loss ln 2 = chance)
FEW_STEPS = 300


def budget_epochs(epochs: int, batch_size: int, min_steps: int, n_items: int, what: str) -> int:
    """`epochs`, raised so that a head over `n_items` training tiles takes at least `min_steps` optimiser steps.

    With `min_steps` 0 (epochs alone) a run of fewer than `FEW_STEPS` steps warns once, naming `what`: a handful
    of images at a large crop is a few steps an epoch and the head barely leaves its initial output. An explicit
    `min_steps` (any value) is taken as meant and stays quiet.
    """
    per_epoch = max(1, math.ceil(n_items / max(1, batch_size)))
    out = max(epochs, math.ceil(max(0, min_steps) / per_epoch))
    if out * per_epoch < FEW_STEPS and min_steps <= 0:
        import warnings

        from geodino.errors import plural
        from geodino.user_keys import user_key

        steps, tiles = plural(out * per_epoch, "optimiser step"), plural(n_items, "tile")
        warnings.warn(
            f"{what}: {steps} ({plural(out, 'epoch')} x {per_epoch} per epoch of {tiles}); "
            f"a head this short is barely trained and its scores say little: set {user_key('min_steps')} "
            f"(e.g. {FEW_STEPS}) or more {user_key('epochs')}",
            stacklevel=3,
        )
    return out
