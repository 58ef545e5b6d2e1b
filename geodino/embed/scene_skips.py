"""`--on-error skip` of a many-scene `geodino embed` run (`geodino.embed.scenes`): a scene that fails while it is
embedded (a header that reads but data truncated mid-file, a block GDAL cannot decode), or whose header GDAL cannot
open at all (a truncated header, a non-raster file named .tif: found by the header check before any scene is
embedded), no longer stops the run.

Each skipped scene leaves a record beside the feature rasters, `OUT/<scene>.skipped.json` (scene, file, origin,
reason): one file per scene, so ranks of `--world-size` never write the same file, and the rank that writes the
mosaic sees every rank's skips (a scene is settled when its raster or its record exists). Its partial output (work
folder, raster, STAC item) is removed, and one warning line names it. The mosaic and `catalog.json` hold the
scenes embedded; the catalog lists the skipped ones under `geodino:skipped`, the mosaic's metadata under
`GEODINO_SKIPPED_SCENES`. `--resume` retries a skipped scene (the file may have been fixed meanwhile); a run of it
starts by removing its record. The exit status stays 0, as `embed images --on-error skip` (a warning per file).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from geodino.embed.stac import Scene
from geodino.errors import InputError, plural

__all__ = ["ON_ERROR", "SKIPPED", "add_to_catalog", "clear_skip", "read_skips", "skip_record", "skip_scene"]

ON_ERROR = ("stop", "skip")
SKIPPED = ".skipped.json"  # OUT/<scene>.skipped.json: the record of a scene skipped by --on-error skip


def skip_record(folder: Path, name: str) -> Path:
    """The record of scene `name` skipped in `folder`."""
    return folder / f"{name}{SKIPPED}"


def clear_skip(folder: Path, name: str) -> None:
    """Forget that scene `name` was skipped (it is being embedded again: --resume or --overwrite)."""
    skip_record(folder, name).unlink(missing_ok=True)


def skip_scene(scene: Scene, out: Path, exc: InputError) -> dict[str, str]:
    """Remove what scene `scene` left of its output `out` (work folder, raster, STAC item), write its record and
    say it in one warning line; the record (scene, file, origin, reason) is returned."""
    from geodino.embed.stac_items import raster_item_path
    from geodino.embed.workdir import work_dir_for
    from geodino.embed.writers import remove_tree
    from geodino.io import atomic_path, json_text

    left = [p for p in (work_dir_for(out), out, raster_item_path(out)) if p.exists()]
    for p in left:
        remove_tree(p)
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    record = {"scene": scene.name, "file": scene.path, "origin": scene.origin or scene.path, "reason": reason}
    with atomic_path(skip_record(out.parent, scene.name), durable=False) as tmp:
        tmp.write_text(json_text(record, indent=2))
    where = f" ({scene.origin})" if scene.origin and scene.origin != scene.path else ""
    warnings.warn(  # the command line shows it as one "geodino: warning: ..." line
        f"skipped scene {scene.name} ({scene.path}{where}) under --on-error skip: {reason}; "
        f"{'its partial output is removed, and ' if left else ''}it is left out of the mosaic and catalog.json "
        "(--resume retries it)",
        stacklevel=4,  # the caller of embed_scenes
    )
    return record


def read_skips(folder: Path, names: list[str]) -> list[dict[str, str]]:
    """The records of the scenes `names` skipped in `folder` (any rank's), in their order; a damaged record still
    counts, with what can be said."""
    found = []
    for name in names:
        path = skip_record(folder, name)
        if not path.exists():
            continue
        try:
            record: Any = json.loads(path.read_text())
            if not isinstance(record, dict):
                raise ValueError
        except (OSError, ValueError):
            record = {"scene": name, "file": "", "origin": "", "reason": f"unknown ({path.name} is damaged)"}
        found.append({k: str(record.get(k, "")) for k in ("scene", "file", "origin", "reason")})
    return found


def add_to_catalog(catalog: Path | None, skips: list[dict[str, str]]) -> None:
    """List the skipped scenes in `catalog.json` (`geodino:skipped`, with file and reason) and in its description."""
    if catalog is None or not skips or not catalog.exists():
        return
    from geodino.io import atomic_path, json_text

    data = json.loads(catalog.read_text())
    data["geodino:skipped"] = skips
    data["description"] = (
        f"{data.get('description', '')}; {plural(len(skips), 'scene')} skipped as unreadable (--on-error skip): "
        + ", ".join(s["scene"] for s in skips)
    )
    with atomic_path(catalog, durable=False) as tmp:
        tmp.write_text(json_text(data, indent=2))
