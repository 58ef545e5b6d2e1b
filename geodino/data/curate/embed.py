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

__all__ = ["check_same_curation", "embed_tiles", "source_rules"]

FIELDS = ("emb", "nodata", "cloud", "time")
"""The arrays of a cached chunk, per tile."""


_Read = tuple[np.ndarray, np.ndarray, int, int, "np.ndarray | None"]


def _collate(batch: list[_Read]) -> list[_Read]:
    return batch


class _Reads:
    """The tiles as the embedding pass reads them: (image, valid, k, time step read) by `Tiles.read`, so the date a
    cube under first/last falls back to comes back with the embedding instead of a read of its own; then the raw
    values of a screening-only QA band (`Tiles.read_qa`; None without --qa-band), which only the cloud rule reads."""

    def __init__(self, tiles: Tiles) -> None:
        self.tiles = tiles

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, k: int) -> _Read:
        return (*self.tiles.read(k), self.tiles.read_qa(k))


def embed_tiles(
    tiles: Tiles,
    backbone: Any,
    folder: Path,
    cfg: CurateConfig,
    progress: bool = True,
    rules: list[CloudRule] | None = None,
) -> dict:
    """Embeddings [N, D] (L2-normalised CLS) plus per-tile nodata and cloud shares (by `rules`, one per source;
    default from `cfg`) and the time step each tile was read at (`time`: -1 without one; `Tiles.set_times` records
    it), chunk by chunk with resume.

    `meta.json` ties the chunks to the backbone and the dtype it computes in (`_numerics`), every tile and the size
    and mtime of each file and the chunk size (`_embedding_key`); it is written (and chunks of another key removed)
    only right before this run writes its first chunk, so a run that fails before that leaves the folder as it
    was. The cloud rules are not part of that key (the backbone never sees them): each chunk records the key of
    the rules its shares were computed by (`_cloud_key`), and a chunk of other rules gets its shares recomputed
    from a read of its tiles, without the backbone, so a re-run with another --cloud-rule reuses the embeddings."""
    import torch

    from geodino.io import atomic_path, make_dirs

    make_dirs(folder)
    rules = rules or source_rules(tiles, cfg)
    key, cloud_key = _embedding_key(tiles, backbone, cfg), _cloud_key(tiles, rules)
    meta = folder / "meta.json"
    old = _read_meta(meta) or {}
    # a meta.json of an older geodino keyed the chunks with the cloud rules: its chunks hold this run's shares
    legacy = old.get("key") == _cache_key(tiles, backbone, rules, cfg)
    cached = legacy or old.get("key") == key
    claimed = cached and not legacy and old.get("cloud_key") == cloud_key

    def claim() -> None:
        """Make the folder this run's: drop the chunks of another key (not those whose embeddings apply), then
        write meta.json."""
        for part in [] if cached else folder.glob("part_*.npz"):  # another backbone, archive or file contents
            part.unlink()
        record = {"key": key, "cloud_key": cloud_key, "tiles": tiles.n, "backbone": backbone.spec}
        record["cloud"] = [r.describe() for r in rules]
        # what makes a curation another one (check_same_curation): the backbone's weights and the tile list
        record.update(backbone_fingerprint=str(backbone.fingerprint), tile_list=_tile_list_hash(tiles))
        record["dtype"] = _numerics(backbone)
        record["inputs"] = _inputs(cfg)
        with atomic_path(meta, overwrite=True) as tmp:
            tmp.write_text(json.dumps(record))

    p = int(backbone.patch_size)
    n_chunks = math.ceil(tiles.n / cfg.chunk)
    bar = None
    if progress:
        from geodino.progress import progress_bar

        bar = progress_bar(total=tiles.n, desc="embedding tiles", unit="tile")
    for c in range(n_chunks):
        part = folder / f"part_{c:05d}.npz"
        lo, hi = c * cfg.chunk, min((c + 1) * cfg.chunk, tiles.n)
        if cached and _part_ok(part, hi - lo):
            if _part_cloud_key(part, cloud_key if legacy else None) != cloud_key:
                if not claimed:
                    claim()
                    claimed = True
                _reshare(part, tiles, rules, range(lo, hi), cfg, cloud_key)  # the embeddings apply: shares only
            if bar is not None:
                bar.update(hi - lo)
            continue
        reads: Any = _Reads(tiles)  # map-style (len and getitem) without torch's Dataset base
        subset: torch.utils.data.Subset[Any] = torch.utils.data.Subset(reads, range(lo, hi))
        loader = torch.utils.data.DataLoader(
            subset, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=_collate
        )
        embs, nodata, cloud, times = [], [], [], []
        for batch in loader:
            images = []
            for image, valid, k, t, qa in batch:
                times.append(t)
                nodata.append(1.0 - float(valid.mean()))
                cloud.append(rules[tiles.locate(k)[0]].share(image, valid, qa))  # qa: never a backbone input
                h, w = (image.shape[1] // p) * p, (image.shape[2] // p) * p
                if h == 0 or w == 0:
                    _too_small(tiles, k, image.shape, p, backbone.spec)
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
                    time=np.asarray(times, np.int64),
                    cloud_key=np.asarray(cloud_key),
                )
    if legacy and not claimed:  # meta.json under this geodino's keys: another rule next time reuses the chunks
        claim()
    if bar is not None:
        bar.close()
    parts = [np.load(folder / f"part_{c:05d}.npz") for c in range(n_chunks)]
    return {k: np.concatenate([q[k] for q in parts]) for k in FIELDS}


def _too_small(tiles: Tiles, k: int, shape: tuple[int, ...], p: int, spec: str) -> None:
    """One line for tile `k` smaller than one patch: which tile, its size, and the setting to change (it said
    `tiles of 4x4 px are smaller than one 8 px patch`, naming neither the file nor --tile-size)."""
    path, size = tiles.table["path"][k], f"{shape[2]}x{shape[1]} px, smaller than one {p} px patch of backbone {spec}"
    if tiles.types[tiles.locate(k)[0]] in ("images", "tar"):
        member = tiles.table.get("member", [""] * tiles.n)[k]  # a tar shard's sample
        raise InputError(f"image {path}{':' + member if member else ''} is {size}; move images under {p} px out")
    raise InputError(
        f"the tiles of {path} are {size}; give a --tile-size (tile_size= in Python, or a source's "
        f"tile_size) of at least {p} px"
    )


def source_rules(tiles: Tiles, cfg: CurateConfig) -> list[CloudRule]:
    """The cloud rule of each source: `cfg.cloud_rule` on its sensor, or on its screening-only QA band (with
    `cfg.qa_shadow`, cloud shadow counted too)."""
    shadow = bool(getattr(cfg, "qa_shadow", False))
    return [
        cloud_rule(s, cfg.cloud_rule, cfg.cloud_threshold, None if qa is None else (qa.name, qa.kind), shadow)
        for s, qa in zip(tiles.sensors, tiles.qa_bands)
    ]


def _reshare(part: Path, tiles: Tiles, rules: list[CloudRule], ks: range, cfg: CurateConfig, cloud_key: str) -> None:
    """Rewrite cached chunk `part` (tiles `ks`) with the cloud shares of `rules`, read from its tiles as the
    embedding pass reads them, its embeddings, nodata shares and time steps kept: no backbone call."""
    import torch

    from geodino.io import atomic_path

    reads: Any = _Reads(tiles)  # map-style (len and getitem) without torch's Dataset base
    subset: torch.utils.data.Subset[Any] = torch.utils.data.Subset(reads, ks)
    loader = torch.utils.data.DataLoader(
        subset, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=_collate
    )
    cloud = [rules[tiles.locate(k)[0]].share(image, valid, qa) for b in loader for image, valid, k, _, qa in b]
    with np.load(part) as z:
        kept = {f: z[f] for f in FIELDS if f != "cloud"}
    with atomic_path(part, overwrite=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **kept, cloud=np.asarray(cloud, np.float32), cloud_key=np.asarray(cloud_key))


def _part_cloud_key(part: Path, default: str | None) -> str | None:
    """The cloud key chunk `part` records its shares under (`default` for a chunk of an older geodino)."""
    with np.load(part) as z:
        return str(z["cloud_key"]) if "cloud_key" in z.files else default


def _embedding_key(tiles: Tiles, backbone: Any, cfg: CurateConfig) -> str:
    """The key cached embeddings apply under: backbone and its numerics, every tile and file (size, mtime) and the
    chunk size; not the cloud rules, which the backbone never sees (`_cloud_key`)."""
    fields = [backbone.fingerprint, tiles.fingerprint(), tiles.n, cfg.chunk, _numerics(backbone)]
    return hashlib.sha256(json.dumps(["embeddings", *fields]).encode()).hexdigest()


def _cloud_key(tiles: Tiles, rules: list[CloudRule]) -> str:
    """The key a chunk's cloud shares apply under: the cloud rules and (only where there is one) a QA band read
    apart with nearest (`qaband.warped_model_qa`)."""
    fields: list[Any] = [[r.describe() for r in rules]]
    warped = [q.describe() if q is not None else None for q in getattr(tiles, "_warped_qa", ())]
    if any(warped):
        fields.append(["qa read with nearest", warped])
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _cache_key(tiles: Tiles, backbone: Any, rules: list[CloudRule], cfg: CurateConfig) -> str:
    """The key of chunks and their cloud shares together (`_embedding_key` and the rules), as the meta.json of an
    older geodino holds it: its chunks still apply, with the shares of these rules."""
    fields = [backbone.fingerprint, tiles.fingerprint(), tiles.n, [r.describe() for r in rules], cfg.chunk]
    fields.append(_numerics(backbone))
    warped = [q.describe() if q is not None else None for q in getattr(tiles, "_warped_qa", ())]
    if any(warped):  # a reprojected source's own QA band read apart with nearest: shares cached before it differ
        fields.append(["qa read with nearest", warped])
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _numerics(backbone: Any) -> str | None:
    """The dtype `backbone` computes its features in (`geodino.inference.runs_in`: bf16 under the eager autocast,
    by default on a GPU with native bf16; float32 on CPU): a curation resumed on another device must not mix its
    chunks with ones computed in other numerics. None for a stand-in without weights (no dtype to tell)."""
    if not hasattr(backbone, "parameters"):
        return None
    from geodino.inference import runs_in

    return runs_in(backbone)


def _tile_list_hash(tiles: Tiles) -> str:
    """A hash of every tile's identity (source, resolved path, member or window, time step), not of the files'
    contents: the same archive re-read after a file changed is the same curation (its chunks are redone)."""
    h = hashlib.sha256()
    for line in tiles.identity():
        h.update(line.encode() + b"\n")
    return h.hexdigest()


def _inputs(cfg: CurateConfig) -> str:
    """The inputs as the user named them (the config file, or the paths), for messages."""
    return str(cfg.config) if cfg.config else ", ".join(map(str, cfg.paths))


def _read_meta(meta: Path) -> dict[str, Any] | None:
    """meta.json as a dict, or None when there is none or it is damaged (a kill mid-write of an old version)."""
    try:
        record = json.loads(meta.read_text()) if meta.exists() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check_same_curation(
    out: Path,
    tiles: Tiles,
    backbone: Any,
    rules: list[CloudRule],
    cfg: CurateConfig,
    *,
    overwrite: bool = False,
) -> None:
    """Refuse, in one line naming the folder, an `out` whose cached embeddings (`embeddings/meta.json`) belong to
    another curation: another backbone (weights fingerprint) or other inputs (tile list). The same curation re-run
    (another --size, --dedup, --clusters, ...; or files changed under the same tiles, whose chunks are redone) goes
    on, as does any run with `overwrite`. A meta.json of an older geodino records neither: only its own key says
    it is the same curation."""
    record = _read_meta(out / "embeddings" / "meta.json")
    if overwrite or record is None:
        return
    old_spec, old_n, old_inputs = record.get("backbone", "?"), record.get("tiles", "?"), record.get("inputs")
    if "backbone_fingerprint" not in record or "tile_list" not in record:
        if record.get("key") in (_cache_key(tiles, backbone, rules, cfg), _embedding_key(tiles, backbone, cfg)):
            return
        detail = f"(backbone {old_spec}, {old_n} tiles) recorded by an older geodino, which cannot be matched"
    elif record["backbone_fingerprint"] != str(backbone.fingerprint):
        detail = f"with another backbone ({old_spec}; this run {backbone.spec})"
    elif record["tile_list"] != _tile_list_hash(tiles):
        were = f"{old_n} tiles" + (f" of {old_inputs}" if old_inputs else "")
        detail = f"of other inputs ({were}; this run {tiles.n} tiles of {_inputs(cfg) or 'its inputs'})"
    else:
        return  # the same backbone and tiles: numerics, chunk size or file contents (redone), cloud rules (shares)
    raise InputError(
        f"--out {out} (out_dir= in Python) holds an earlier curation {detail}; this run would replace its cached "
        "embeddings: pass --overwrite (overwrite=True in Python) to do so, or choose another --out folder"
    )


def _part_ok(part: Path, n: int) -> bool:
    """Whether a cached chunk exists and reads back whole (`n` tiles); a truncated or damaged one is recomputed."""
    if not part.exists():
        return False
    try:
        with np.load(part) as z:
            return all(len(z[k]) == n for k in FIELDS)  # a chunk of an older geodino has no `time`: redone
    except Exception:  # zipfile.BadZipFile, EOFError, KeyError, ValueError...: any unreadable chunk is redone
        return False
