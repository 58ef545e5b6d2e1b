"""The windows `geodino data stats` reads from rasters and datacubes: every scene's grid of non-overlapping windows
(the last row/column clipped at the edge), all of them or a uniform sample without replacement, so every pixel has
the same chance to be counted; and the loop that reads them, skipping (on_error=skip) or raising on failed reads.
Image folders and tar shards likewise: every image once, or a uniform sample of them without replacement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.errors import InputError, plural

__all__ = ["check_tile_size", "grid_windows", "image_picks", "read_images", "read_windows"]


def grid_windows(
    scenes: Sequence[Any], tile: int, samples: int, seed: int
) -> tuple[list[tuple[int, int, int, int, int]], int]:
    """(windows to read, windows in the grid): every scene's non-overlapping `tile`-px windows (edge ones clipped),
    all of them when there are at most `samples`, else `samples` drawn uniformly without replacement. On an axis a
    cube reads reversed (`mirrored`: south-up or east-west, read north-up) the grid starts at the far edge, as
    stored, and the clipped window is the near one: laid from the near edge, most windows of a store whose size is
    no multiple of its chunk straddled two chunks."""
    if tile < 1:
        raise InputError(f"tile_size={tile} must be a positive number of pixels")
    rows = np.array([-(-int(sc.height) // tile) for sc in scenes], dtype=np.int64)
    cols = np.array([-(-int(sc.width) // tile) for sc in scenes], dtype=np.int64)
    per_scene = rows * cols
    total = int(per_scene.sum())
    if total <= samples:
        picks = np.arange(total, dtype=np.int64)
    else:
        rng = np.random.default_rng([int(seed), 0x67726964])
        picks = np.sort(rng.choice(total, size=samples, replace=False))
    starts = np.concatenate([[0], np.cumsum(per_scene)])
    out = []
    for k in picks.tolist():
        i = int(np.searchsorted(starts, k, side="right") - 1)
        r, c = divmod(k - int(starts[i]), int(cols[i]))
        sc = scenes[i]
        x, w = _along(c, tile, int(sc.width), "x" in getattr(sc, "mirrored", ()))
        y, h = _along(r, tile, int(sc.height), "y" in getattr(sc, "mirrored", ()))
        out.append((i, x, y, w, h))
    return out, total


def _along(k: int, tile: int, n: int, mirrored: bool) -> tuple[int, int]:
    """(origin, size) of grid window `k` along an axis of `n` px read in order, or read reversed (`mirrored`)."""
    start = k * tile
    size = min(tile, n - start)
    return (n - start - size, size) if mirrored else (start, size)


def read_windows(read: Any, windows: Sequence[tuple[int, ...]], on_error: str, progress: bool) -> Any:
    """Samples `read(*window)` of `windows` in order; a failing read is skipped with a warning (on_error=skip) or
    raised."""
    import warnings

    import rasterio

    from geodino.progress import progress_bar

    failed: list[InputError] = []
    with rasterio.Env():  # GDAL errors go to rasterio's exceptions and logging, not printed as "ERROR 1: ..."
        for w in progress_bar(windows, desc="band statistics", unit="tile", disable=not progress):
            try:
                yield read(*w)
            except InputError as exc:
                if on_error != "skip":
                    raise
                failed.append(exc)
    if failed and len(failed) == len(windows):
        raise InputError(
            f"{'the' if len(windows) == 1 else 'every one of the'} {plural(len(windows), 'window')} failed to read, "
            f"the last: {failed[-1]}; re-download or remove the broken file(s)"
        )
    if failed:
        warnings.warn(
            f"{len(failed)} of {len(windows)} windows failed to read and were skipped (on_error: skip), the last: "
            f"{failed[-1]}; the statistics cover the other windows",
            stacklevel=2,
        )


def image_picks(n: int, samples: int, seed: int) -> list[int]:
    """The images (0..n-1) to read: every one when there are at most `samples`, else `samples` drawn uniformly
    without replacement (an image read twice would weigh twice)."""
    if n <= samples:
        return list(range(n))
    rng = np.random.default_rng([int(seed), 0x696D6773])
    return sorted(int(k) for k in rng.choice(n, size=samples, replace=False))


def read_images(source: Any, picks: Sequence[int], seed: int, progress: bool) -> Any:
    """Samples of images `picks` of an image folder or tar shard source (unshuffled, `max_tries` 1), each read once:
    a corrupt one is left out under on_error skip (the source says it, once per file: each is read once), not
    replaced by a random other; other errors (band count, bit depth) and on_error stop raise."""
    from geodino.progress import progress_bar

    failed = 0
    for k in progress_bar(picks, desc="band statistics", unit="image", disable=not progress):
        skipped = source.skipped
        try:
            sample = source.get(k, seed)
        except InputError:
            if source.skipped == skipped:  # not a file that failed to decode
                raise
            failed += 1
            continue
        yield sample
    if picks and failed == len(picks):
        raise InputError(
            f"{'the' if failed == 1 else 'every one of the'} {plural(failed, 'image')} failed to decode; re-download "
            "or remove the broken file(s)"
        )


def check_tile_size(type: str, tile_size: Any) -> None:
    """Refuse a tile size for image folders and tar shards (`geodino data stats`), which are read whole."""
    if type in ("images", "tar") and tile_size is not None:
        what = "image folders" if type == "images" else "tar shards"
        raise InputError(
            f"--tile-size {tile_size} (tile_size= in Python) does not apply to {what}: each image is read whole, at "
            "its own size (the YAML "
            "records it as chip_size); leave --tile-size out"
        )
