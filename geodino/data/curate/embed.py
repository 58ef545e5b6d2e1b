"""Streamed, resumable tile embeddings: chunks of L2-normalised CLS tokens cached as `part_NNNNN.npz`."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.curate.clouds import CloudRule, cloud_rule
from geodino.data.curate.config import CurateConfig
from geodino.data.curate.tiles import Tiles
from geodino.errors import InputError

__all__ = ["embed_tiles"]


def _collate(batch: list[tuple[np.ndarray, np.ndarray, int]]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    return batch


def embed_tiles(
    tiles: Tiles,
    backbone: Any,
    folder: Path,
    cfg: CurateConfig,
    progress: bool = True,
    rules: list[CloudRule] | None = None,
) -> dict:
    """Embeddings [N, D] (L2-normalised CLS) plus per-tile nodata and cloud shares (by `rules`, one per source;
    default from `cfg`), chunk by chunk with resume.

    `meta.json` ties the chunks to the backbone, every tile and the size and mtime of each file, the cloud rules
    and the chunk size; it is written (and chunks of another key removed) only right before this run writes its
    first chunk, so a run that fails before that leaves the folder as it was."""
    import torch

    from geodino.io import atomic_path, make_dirs

    make_dirs(folder)
    rules = rules or [cloud_rule(sensor, cfg.cloud_rule, cfg.cloud_threshold) for sensor in tiles.sensors]
    key = hashlib.sha256(
        json.dumps(
            [backbone.fingerprint, tiles.fingerprint(), tiles.n, [r.describe() for r in rules], cfg.chunk]
        ).encode()
    ).hexdigest()
    meta = folder / "meta.json"
    try:
        cached = meta.exists() and json.loads(meta.read_text()).get("key") == key
    except (OSError, ValueError, AttributeError):  # damaged (a kill mid-write of an old version): start afresh
        cached = False
    claimed = cached

    def claim() -> None:
        """Make the folder this run's: drop the chunks of another key, then write meta.json."""
        for old in folder.glob("part_*.npz"):  # another backbone, archive or file contents: they do not apply
            old.unlink()
        with atomic_path(meta, overwrite=True) as tmp:
            tmp.write_text(
                json.dumps(
                    {"key": key, "tiles": tiles.n, "backbone": backbone.spec, "cloud": [r.describe() for r in rules]}
                )
            )

    p = int(backbone.patch_size)
    n_chunks = math.ceil(tiles.n / cfg.chunk)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=tiles.n, desc="embedding tiles", unit="tile")
    for c in range(n_chunks):
        part = folder / f"part_{c:05d}.npz"
        lo, hi = c * cfg.chunk, min((c + 1) * cfg.chunk, tiles.n)
        if cached and _part_ok(part, hi - lo):
            if bar is not None:
                bar.update(hi - lo)
            continue
        subset = torch.utils.data.Subset(tiles, range(lo, hi))  # type: ignore[arg-type]
        loader = torch.utils.data.DataLoader(
            subset, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=_collate
        )
        embs, nodata, cloud = [], [], []
        for batch in loader:
            images = []
            for image, valid, k in batch:
                nodata.append(1.0 - float(valid.mean()))
                cloud.append(rules[tiles.locate(k)[0]].share(image, valid))
                h, w = (image.shape[1] // p) * p, (image.shape[2] // p) * p
                if h == 0 or w == 0:
                    raise InputError(f"tiles of {image.shape[2]}x{image.shape[1]} px are smaller than one {p} px patch")
                x = backbone.normalize(torch.from_numpy(np.ascontiguousarray(image[:, :h, :w])))
                images.append(torch.where(torch.from_numpy(valid[:h, :w])[None], x, torch.zeros(())))
            sizes = {tuple(t.shape) for t in images}
            groups = [torch.stack(images)] if len(sizes) == 1 else [t[None] for t in images]
            for g in groups:
                cls = backbone.features(g, layers="last")[1][0]
                embs.append(torch.nn.functional.normalize(cls.float(), dim=-1).cpu().numpy())
            if bar is not None:
                bar.update(len(batch))
        if not claimed:
            claim()
            claimed = True
        with atomic_path(part, overwrite=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    emb=np.concatenate(embs).astype(np.float32),
                    nodata=np.asarray(nodata, np.float32),
                    cloud=np.asarray(cloud, np.float32),
                )
    if bar is not None:
        bar.close()
    parts = [np.load(folder / f"part_{c:05d}.npz") for c in range(n_chunks)]
    return {k: np.concatenate([q[k] for q in parts]) for k in ("emb", "nodata", "cloud")}


def _part_ok(part: Path, n: int) -> bool:
    """Whether a cached chunk exists and reads back whole (`n` tiles); a truncated or damaged one is recomputed."""
    if not part.exists():
        return False
    try:
        with np.load(part) as z:
            return all(len(z[k]) == n for k in ("emb", "nodata", "cloud"))
    except Exception:  # zipfile.BadZipFile, EOFError, KeyError, ValueError...: any unreadable chunk is redone
        return False
