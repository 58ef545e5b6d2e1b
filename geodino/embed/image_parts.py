"""The work folder of an `embed images` run: its vectors in parts, so that a killed run resumes where it stopped.

The folder is the feature rasters' (`geodino.embed.workdir`): `.NAME.partial/` beside the GeoParquet, holding the
run's identity record (`plan.json`: backbone weights, pool, layers, image size, bands, scaling, the folder and its
file list...) and `part_NNNNNNN.parquet` files, each the images lo..hi-1 of the sorted file list: their pooled
vectors (before `l2_normalize`, which the final write applies to all rows at once), sizes, footprints (WKB), the
files skipped as unreadable and the input-scaling rules met. Every file is written atomically (`atomic_path`); the
record only right before the first part, so a run that fails before any part leaves nothing to resume. A rerun
with another identity is refused (`workdir.check_partial`: one line naming what differs, `--overwrite` the way out).
Each part also records its files as they were and the folder's DN -> reflectance rules; a rerun redoes the parts
whose files or rules changed since (`geodino.embed.image_changes`). Parts hold whole batches, so the rerun feeds the
backbone the batches an uninterrupted run feeds it.
The output GeoParquet is written here too, from the parts (`write_output`, `write_table`).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import GeoDinoError, InputError, plural

__all__ = [
    "PART_IMAGES",
    "ImageParts",
    "Part",
    "PartRunner",
    "files_digest",
    "part_size",
    "run_parts",
    "write_output",
    "write_table",
]

PART_IMAGES = 256  # images per part, rounded up to whole batches: the most a kill makes a rerun redo
PART_KEY = b"geodino_part"


def part_size(batch_size: int) -> int:
    """Images per part: whole batches (so a resumed run's batches are an uninterrupted run's), about PART_IMAGES."""
    return batch_size * max(1, -(-PART_IMAGES // batch_size))


def files_digest(files: list[str]) -> str:
    """The file list as the identity records it: the count and a hash of the sorted relative paths."""
    h = hashlib.sha256("\n".join(files).encode()).hexdigest()
    return f"{len(files)} files, sha256 {h[:16]}"


@dataclass
class Part:
    """Images lo..hi-1: `rows` (file indexes embedded, ascending), `vectors` [len(rows), D] float32 (pooled, before
    L2), `info` (width, height, bands, geometry of each row), `skipped` (index -> why) and `rules` (texts met)."""

    lo: int
    hi: int
    rows: list[int]
    vectors: np.ndarray
    info: list[dict[str, Any]]
    skipped: dict[int, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    files: list[str | None] | None = None  # each file then (`image_changes`); None: a part of an earlier version
    settled: dict[str, str] | None = None  # the folder's DN -> reflectance rules then (`image_changes`)
    stamps: list[list[int]] | None = None  # each file's [ctime_ns, inode] then; None: a part of an earlier version
    taken_ns: int | None = None  # when `files` and `stamps` were taken (time.time_ns())


@dataclass
class ImageParts:
    """The work folder of output `out` for a run of identity `ident` (a JSON-able dict)."""

    out: Path
    ident: dict[str, Any]
    resumed: bool = False  # the folder was there, with this identity, when the run started
    claimed: bool = False  # the identity record is written (by this run or the one it resumes)

    def __post_init__(self) -> None:
        from geodino.embed.workdir import jsonable, work_dir_for

        self.work = work_dir_for(self.out)
        self.ident = jsonable(self.ident)

    def open(self, *, overwrite: bool) -> list[Part]:
        """The parts a rerun with this identity continues from (a chain from image 0); the folder of a run with
        another identity is refused in one line (unless `overwrite`: then, as one with no record, removed)."""
        from geodino.embed.workdir import PLAN_FILE, check_partial

        record = self.work / PLAN_FILE
        if overwrite or not _reads(record):
            self.remove()  # nothing to continue: no record (a kill before the first part), or starting again
            return []
        check_partial(self.work, self.ident)
        self.resumed = self.claimed = True
        parts: list[Part] = []
        for path in sorted(p for p in self.work.glob("part_*.parquet") if not p.name.startswith(".")):
            part = read_part(path)
            if part is None or part.lo != (parts[-1].hi if parts else 0):
                break  # damaged, or after a gap: redone from here
            parts.append(part)
        keep = {part_path(self.work, p.lo) for p in parts}
        for path in self.work.glob("part_*.parquet"):
            if path not in keep:
                path.unlink(missing_ok=True)
        return parts

    def write(self, part: Part) -> None:
        """Write one part atomically (the identity record first, when this run is the folder's first)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from geodino.embed.workdir import PLAN_FILE
        from geodino.io import atomic_path

        if not self.claimed:
            with atomic_path(self.work / PLAN_FILE) as tmp:
                tmp.write_text(json.dumps(self.ident, indent=1))
            self.claimed = True
        vectors = np.ascontiguousarray(part.vectors, dtype=np.float32)
        dim = int(vectors.shape[1])
        table = pa.table(
            {
                "index": pa.array(part.rows, pa.int64()),
                **{k: pa.array([r[k] for r in part.info], pa.int32()) for k in ("width", "height", "bands")},
                "geometry": pa.array([_wkb(r.get("geometry")) for r in part.info], pa.binary()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            }
        )
        meta = {"lo": part.lo, "hi": part.hi, "skipped": {str(i): why for i, why in part.skipped.items()}}
        meta["rules"] = part.rules
        if part.files is not None:  # what a resume checks the files against (`image_changes`)
            meta |= {"files": part.files, "settled": part.settled}
            meta |= {"stamps": part.stamps, "taken_ns": part.taken_ns} if part.stamps is not None else {}
        with atomic_path(part_path(self.work, part.lo)) as tmp:
            pq.write_table(table.replace_schema_metadata({PART_KEY: json.dumps(meta).encode()}), tmp)

    def remove(self) -> None:
        from geodino.embed.writers import remove_tree

        remove_tree(self.work)


def part_path(work: Path, lo: int) -> Path:
    return work / f"part_{lo:07d}.parquet"


def read_part(path: Path) -> Part | None:
    """A part as written, or None when it does not read back whole (a damaged file is redone, not trusted)."""
    import pyarrow.parquet as pq
    import shapely

    try:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[PART_KEY])
        lo, hi = int(meta["lo"]), int(meta["hi"])
        skipped = {int(i): str(why) for i, why in meta["skipped"].items()}
        rows = [int(i) for i in table.column("index").to_pylist()]
        emb = table.column("embedding").combine_chunks()
        vectors = emb.flatten().to_numpy(zero_copy_only=False).reshape(len(emb), emb.type.list_size)
        cols = {k: table.column(k).to_pylist() for k in ("width", "height", "bands", "geometry")}
    except Exception:  # pyarrow's and json's many kinds: any part that does not read is redone
        return None
    done = sorted(rows + list(skipped))
    if path != part_path(path.parent, lo) or done != list(range(lo, hi)) or rows != sorted(rows):
        return None
    info = [
        {"width": w, "height": h, "bands": b, "geometry": None if g is None else shapely.from_wkb(g)}
        for w, h, b, g in zip(cols["width"], cols["height"], cols["bands"], cols["geometry"], strict=True)
    ]
    rules, files, settled = list(meta.get("rules", [])), meta.get("files"), meta.get("settled")
    vectors = vectors.astype(np.float32, copy=False)
    return Part(lo, hi, rows, vectors, info, skipped, rules, files, settled, meta.get("stamps"), meta.get("taken_ns"))


def _reads(record: Path) -> bool:
    """Whether an identity record is there and reads as JSON (it is written atomically: anything else is not ours)."""
    try:
        return isinstance(json.loads(record.read_text()), dict)
    except (OSError, ValueError):
        return False


def _wkb(geom: Any) -> bytes | None:
    if geom is None:
        return None
    import shapely

    return shapely.to_wkb(geom)


def run_parts(
    run: PartRunner, work: ImageParts, *, overwrite: bool, on_error: str, progress: bool, say: bool = True
) -> list[Part]:
    """The parts of the run: those a killed run left (checked against this run's identity; `say`: one line that it
    resumes), then the rest, each written as soon as it is computed. A user error in a run that started the work
    folder removes it (a rerun cannot fix it, as for feature rasters); kills and interrupts leave it to resume."""
    from geodino.embed.image_changes import stale_parts

    files, n = run.data.files, len(run.data.files)
    parts = work.open(overwrite=overwrite)
    start = parts[-1].hi if parts else 0
    redo = stale_parts(parts, run.data, say=say)  # made from files that changed since: redone, in their batches
    redone = {r.lo for r in redo}
    parts = [p for p in parts if p.lo not in redone]
    if work.resumed:
        skipped = sorted(i for p in parts for i in p.skipped)
        if skipped and on_error == "stop":
            raise InputError(
                f"the partial output {work.work} skipped {plural(len(skipped), 'unreadable image')} (e.g. "
                f"{files[skipped[0]]}: the run it continues had --on-error skip); pass --on-error skip "
                "(on_error='skip') to finish it, or --overwrite to start again (overwrite=True in Python)"
            )
        was = f", {plural(len(skipped), 'unreadable image')} skipped" if skipped else ""
        if say:
            print(
                f"geodino: resuming: {sum(len(p.rows) for p in parts):,} of {n:,} images embedded{was} ({work.work}); "
                "--overwrite (overwrite=True in Python) starts again",
                file=sys.stderr,
            )
    try:
        parts += run.run(start, work.write, progress=progress, redo=[(p.lo, p.hi) for p in redo])
    except GeoDinoError:
        if not work.resumed:
            work.remove()
        raise
    return sorted(parts, key=lambda p: p.lo)


def output_record(bb: Any) -> dict[str, str]:
    """The output's metadata beyond its resume identity: the geodino that wrote it and, for a backbone read from a
    weights file, that file's sha256 (what `sha256sum` prints; the fingerprint hashes it with the options)."""
    from geodino import __version__

    weights = getattr(bb, "weights_sha256", None)
    return {"version": __version__} | ({"model_file_sha256": weights} if isinstance(weights, str) and weights else {})


def write_output(
    out: Path,
    files: list[str],
    parts: list[Part],
    ident: dict[str, Any],
    *,
    say: bool = True,
    record: dict[str, Any] | None = None,
) -> None:
    """Write the GeoParquet `out` from the parts (L2 applied to all rows at once, as an uninterrupted run) and, with
    `say`, one line saying what was written. `record`: more metadata that is not the resume identity `ident` (the
    geodino version: parts of an older version still resume)."""
    from geodino.io import atomic_path

    rows = [i for p in parts for i in p.rows]
    vectors = np.concatenate([p.vectors for p in parts]).astype(np.float32, copy=False)
    if ident["l2_normalize"]:
        import torch
        import torch.nn.functional as F

        vectors = F.normalize(torch.from_numpy(vectors), dim=1).numpy()
    skipped = sorted(i for p in parts for i in p.skipped)
    scaling = "; ".join(dict.fromkeys(t for p in parts for t in p.rules)) or "none (no image read)"
    if any(p.rules for p in parts):  # --no-file-scale said, as the probes' line says it (`InputScaling.off_note`)
        from geodino.embed.images import SCALE_KEYS
        from geodino.eval.scaling import InputScaling

        on = ident.get("file_scale", True)  # recorded only when off
        scaling += InputScaling(scale=ident["scale"], keys=SCALE_KEYS, file_scale=on).off_note()
    pool, idx, image_size, l2 = ident["pool"], ident["layers"], ident["image_size"], ident["l2_normalize"]
    meta = {
        "backbone": ident["backbone"],
        "fingerprint": ident["fingerprint"],
        "pool": pool,
        "layers": idx,
        "image_size": image_size,
        "l2_normalize": l2,
        "input_scaling": scaling,
        "inference_path": ident["inference_path"],
        "skipped": [files[i] for i in skipped],
        **(record or {}),
    }
    with atomic_path(out, overwrite=True) as tmp:
        write_table(tmp, [files[i] for i in rows], [r for p in parts for r in p.info], vectors, meta)
    if not say:
        return
    size = f"{image_size}x{image_size} px" if image_size else "native size"
    was = f"; {plural(len(skipped), 'unreadable image')} skipped" if skipped else ""
    print(
        f"geodino: wrote {out} ({plural(len(rows), 'image')}, {vectors.shape[1]} dims: {pool} of block"
        f"{'s' if len(idx) > 1 else ''} {','.join(map(str, idx))}{', unit length' if l2 else ''}, "
        f"{size}; input scaling {scaling}; inference path {ident['inference_path']}{was})",
        file=sys.stderr,
    )


class PartRunner:
    """The backbone over `data` (`image_files.ImageFiles`) part by part, through the probes' extraction
    (`geodino.eval.features.extract_features`: batches, resizing, the fast path), with one progress bar and one
    throughput line for the run."""

    def __init__(
        self, bb: Any, data: Any, idx: list[int], *, pool: str, image_size: int, batch_size: int, amp: bool
    ) -> None:
        from geodino.models.frozen import FastPath

        self.bb, self.data, self.idx, self.pool = bb, data, idx, pool
        self.image_size, self.batch_size, self.amp = image_size, batch_size, amp
        self.path = FastPath(False)

    @contextmanager
    def accelerated(self) -> Iterator[str]:
        """Hold the fast inference path across the parts, planned for all the run's images (as an uninterrupted
        run plans it: a rerun computes on the same path); yields its name as the output records it."""
        from geodino.eval.features import resolve_image_size
        from geodino.inference import fast_backbone

        assert self.data.ref is not None, "prime() first"
        size = resolve_image_size(self.image_size, self.data.ref[1][-2:], int(self.bb.patch_size))
        if not hasattr(self.bb, "model"):  # a backbone object without a ViT inside: eager
            yield _path_name(self.bb, self.path.name)
            return
        mode = "bfloat16" if self.amp else "auto"
        with fast_backbone(self.bb, mode=mode, n_images=len(self.data), image_size=size) as path:
            self.path = path
            yield _path_name(self.bb, path.name)

    def run(
        self, start: int, write: Callable[[Part], None], *, progress: bool, redo: Sequence[tuple[int, int]] = ()
    ) -> list[Part]:
        """Embed the parts `redo` (lo, hi) again, then images `start`.. in parts of `part_size`, handing each to
        `write` as soon as it is computed."""
        from geodino.inference import Throughput
        from geodino.progress import progress_bar

        n, step, done = len(self.data), part_size(self.batch_size), []
        spans = [*redo, *((lo, min(lo + step, n)) for lo in range(start, n, step))]
        done_before = n - sum(hi - lo for lo, hi in spans)
        bar = progress_bar(
            total=n, initial=done_before, desc="embed images", unit="img", disable=not progress, leave=False
        )
        speed = Throughput()
        try:
            for lo, hi in spans:
                part = self.part(lo, hi, bar)
                write(part)
                done.append(part)
                speed.add(len(part.rows))
        finally:
            bar.close()
        if progress and done:
            print(speed.line("embed images", self.path), file=sys.stderr)
        return done

    def part(self, lo: int, hi: int, bar: Any) -> Part:
        """Images lo..hi-1 as one part: pooled vectors of those that read, the others recorded as skipped."""
        from geodino.embed.image_changes import settled_rules, take_files

        d = self.data
        states, stamps, taken = take_files(d.root, d.files[lo:hi])  # before the pixels are read (`image_changes`)
        fs = _extract(self.bb, _Slice(d, lo, hi, bar), self.idx, self.image_size, self.batch_size, self.amp)
        keep = (fs.targets >= 0).numpy()
        vectors = _pool(fs, self.pool)[keep].numpy()
        rows = [int(i) for i in fs.targets[keep].tolist()]
        skipped = {i: d.failed[i] for i in range(lo, hi) if i in d.failed}
        rules = list(dict.fromkeys(d.rule_of[i] for i in range(lo, hi) if i in d.rule_of))
        info, settled = [d.info[i] for i in rows], settled_rules(d.scaling)
        return Part(lo, hi, rows, vectors, info, skipped, rules, states, settled, stamps, taken)


class _Slice:
    """Images lo..hi-1 of `data` as a dataset for `extract_features`, each image counted once on the run's bar."""

    def __init__(self, data: Any, lo: int, hi: int, bar: Any) -> None:
        self.data, self.lo, self.hi, self.bar = data, lo, hi, bar
        self.name, self.split, self.key, self.bands = data.name, data.split, "", data.bands  # key "": no cache
        self._held: tuple[int, dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, j: int) -> dict[str, Any]:
        if self._held is not None and self._held[0] == j:  # extract_features reads its first sample twice
            return self._held[1]
        sample = self.data[self.lo + j]
        self._held = (j, sample)
        self.bar.update(1)
        return sample


def _extract(bb: Any, data: Any, idx: list[int], image_size: int, batch_size: int, amp: bool) -> Any:
    """The probes' extraction (batching, resize, fast path), without its feature cache and progress bar (the run
    has one of its own)."""
    from geodino.eval.features import FeatureConfig, extract_features

    cfg = FeatureConfig(
        layers=idx,
        image_size=image_size,
        batch_size=batch_size,
        num_workers=0,  # `data` records sizes, footprints and skipped files as it reads: one process
        cache=False,
        fast="bfloat16" if amp else "auto",
    )
    # skipped files' stand-ins (index -1) run through the model too, but are not images embedded
    return extract_features(bb, data, cfg, target_key="index", desc="embed images", progress=False, stand_in=-1)


def _pool(fs: Any, pool: str) -> Any:
    """[N, dim] float32: the CLS tokens, the patch means, or both (the linear probes' avgpool), chosen blocks
    concatenated."""
    if pool == "mean":
        return fs.patch_mean.flatten(1).float()
    return fs.linear_input(n_last_blocks=fs.cls.shape[1], avgpool=pool == "cls+mean")


def _path_name(bb: Any, name: str) -> str:
    """The inference path as the feature rasters record it, with the dtype an eager run computes in."""
    if name != "eager":
        return name
    from geodino.inference import runs_on
    from geodino.models.frozen import FastPath

    return f"eager ({runs_on(bb, FastPath(False))})"


def write_table(
    path: Path, files: list[str], info: list[dict[str, Any] | None], vectors: np.ndarray, meta: dict
) -> None:
    """Write the rows as GeoParquet (EPSG:4326, geometry null where not georeferenced) with `embedding` a
    fixed-size list of float32 and `meta` as JSON under the file's `geodino` metadata key."""
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [r or {} for r in info]
    gdf = gpd.GeoDataFrame(
        {
            "path": files,
            "label": [f.split("/", 1)[0] if "/" in f else None for f in files],
            "width": np.array([r.get("width", 0) for r in rows], dtype=np.int32),
            "height": np.array([r.get("height", 0) for r in rows], dtype=np.int32),
            "bands": np.array([r.get("bands", 0) for r in rows], dtype=np.int32),
        },
        geometry=[r.get("geometry") for r in rows],
        crs="EPSG:4326",
    )
    # geopandas writes the GeoParquet `geo` metadata; pandas cannot hold a fixed-size list column (its dtype string
    # does not read back), so the table geopandas wrote is read back and the embedding column added in Arrow
    buf = io.BytesIO()
    gdf.to_parquet(buf, index=False)
    table = pq.read_table(io.BytesIO(buf.getvalue()))
    dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = table.add_column(
        table.schema.get_field_index("geometry"), "embedding", pa.FixedSizeListArray.from_arrays(flat, dim)
    )
    keep = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
    keep[b"geodino"] = json.dumps({**meta, "dim": dim, "n_images": len(files)}).encode()
    pq.write_table(table.replace_schema_metadata(keep), path)
