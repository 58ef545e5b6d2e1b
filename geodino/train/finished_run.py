"""A finished run's re-run (the same command after the run completed: its checkpoint is at the last step) trains
nothing and keeps the run's files as they are. Pretraining (`pretrain_start`, `pretrain_fit`) and distillation
(`distill.run_folder`, `distill.finish`) decide it with the same cheap checks, from file times and the STAC item
alone (no export is written again to compare it):

- `is_finished`: the resumed step is at the run's length, so no start file is written (config.yaml keeps saying
  what ran);
- `export_is_current`: every file of an export is in place, written after the final checkpoint, and its STAC item
  names that checkpoint's step (pretraining's whole check: `pretrain_fit` passes no properties) and, given
  them, records the properties this run would write (distillation: which network, teacher, data and extent), so a
  deleted export, another `train.export` or a moved data folder export again;
- `is_newer`: an output drawn from inputs (curves.png from log.csv) is in place and no older than any of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ITEM_TOP_LEVEL", "export_is_current", "is_finished", "is_newer"]

# properties `stac_item.export_item` moves out of `properties` to the item's top level
ITEM_TOP_LEVEL = ("geometry", "bbox")


def is_finished(resume_step: Any, max_steps: int) -> bool:
    """Whether a start that resumes at `resume_step` (None or 0: it resumes nothing) has nothing left to train."""
    return isinstance(resume_step, int) and resume_step > 0 and resume_step >= max_steps


def is_newer(output: Path, *inputs: Path) -> bool:
    """Whether `output` exists and was written no earlier than every input that exists."""
    try:
        written = output.stat().st_mtime
    except OSError:
        return False
    return all(written >= p.stat().st_mtime for p in inputs if p.exists())


def _as_json(value: Any) -> Any:
    """`value` as the item's JSON reads back (tuples as lists, other objects as their text)."""
    return json.loads(json.dumps(value, default=str))


def _files_current(final: Path, export: Path) -> bool:
    """Whether every file of the export `export` is in place, written after checkpoint `final`, and its STAC item
    names `final`'s step: what re-exporting `final` would write again (but for the item's timestamps)."""
    from geodino.models.checkpoints import export_paths
    from geodino.models.checkpoints.stac_item import export_item_path
    from geodino.train.checkpointing import checkpoint_step

    files = (*export_paths(export), export_item_path(export))
    try:
        written = min(p.stat().st_mtime for p in files)
        step = json.loads(files[-1].read_text())["properties"].get("geodino:step")
        return written >= final.stat().st_mtime and step is not None and step == checkpoint_step(final)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def export_is_current(final: Path, export: Path, properties: Mapping[str, Any] | None = None) -> bool:
    """Whether the export `export` (its `.pth`) is what exporting checkpoint `final` would write again, but for the
    STAC item's timestamps: every file in place, none older than `final`, the item naming `final`'s step
    (`_files_current`, pretraining's whole check) and, with `properties`, each one equal in the item (`geometry`
    and `bbox` at its top level)."""
    if not _files_current(final, export):
        return False
    if not properties:
        return True
    from geodino.models.checkpoints.stac_item import export_item_path

    try:
        item = json.loads(export_item_path(export).read_text())
        have = item["properties"]
        return all(
            (item.get(k) if k in ITEM_TOP_LEVEL else have.get(k, _MISSING)) == _as_json(v)
            for k, v in properties.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


_MISSING = object()  # a property the item lacks: never equal to what the run would record
