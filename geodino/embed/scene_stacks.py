"""The per-item VRTs of a many-scene run's one-band-per-asset STAC items (`OUT/stacked/<item>.vrt`, on the first
asset's grid): each item's asset headers are checked and its VRT text made before anything is written
(`stack_sources`); the run writes them once its checks pass."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geodino.embed.scene_checks import earlier_skip
from geodino.embed.stac import Scene
from geodino.errors import InputError, plural

STACKED = "stacked"  # OUT/stacked/<item>.vrt: the per-item VRTs of one-band-per-asset STAC items


def stack_sources(
    scenes: list[Scene],
    folder: Path,
    *,
    say: Callable[[str], None] | None = None,
    unreadable: dict[str, InputError] | None = None,
    headers: Mapping[str, Any] | None = None,
) -> tuple[list[Scene], dict[Path, str]]:
    """Scenes with `sources` (several single-band STAC assets) pointed at `folder`/<scene>.vrt, and the XML to
    write there (`geodino.data.vrt.write_vrt`) once the run has passed its checks: every item is checked (asset
    headers only, remote ones by range requests) before anything is written, so bad input leaves no files.
    `say` is told which assets are resampled on read. `unreadable` (--on-error skip): a scene with an asset GDAL
    cannot open is put there (name -> why) and gets no VRT, as `check_headers` does with a raster. `headers`: the
    headers the `--bbox` check read (scene name -> its first asset's, `scene_checks.in_bbox`; None: unreadable),
    so that asset is not opened twice."""
    from geodino.data.vrt import SourceUnreadable, stack_files_xml

    out, pending, notes = [], {}, []
    for s in scenes:
        if not s.sources:
            out.append(s)
            continue
        path = folder / f"{s.name}.vrt"
        head = (headers or {}).get(s.name)
        known = {head.path: head} if head is not None and head.path == s.sources[0][1] else None
        try:
            pending[path], resampled = stack_files_xml(s.sources, where=s.origin, headers=known)
        except SourceUnreadable as exc:
            if unreadable is None:  # a --resume that forgot --on-error skip is told so
                raise InputError(f"{exc}{earlier_skip(folder.parent, s.name)}") from exc
            why = exc.why.rstrip(".") if exc.path in exc.why else f"{exc.path}: {exc.why.rstrip('.')}"
            unreadable[s.name] = InputError(f"cannot open its asset {exc.label!r} ({why}); re-download or re-copy it")
            resampled = []
        notes += resampled
        out.append(dataclasses.replace(s, path=str(path)))
    if say is not None and notes:
        say(
            f"geodino: resampled on read onto each item's first asset grid: {'; '.join(sorted(set(notes)))} "
            f"({plural(len(notes), 'asset')}); list the finest band first to keep its resolution"
        )
    return out, pending
