"""The probe runner's input check: every task's data opened before any backbone loads or any task runs.

A suite runs its tasks one after another; a typo in the last task's folder used to surface only when that task
started, after the earlier tasks had run (an hour on a real suite) and with their results half-written. Here the
named datasets are opened and every file key (images, masks, CHMs, boxes) is listed as the task will list it, so a
missing or empty folder stops the suite in a second with one line naming the task and key.
"""

from __future__ import annotations

from typing import Any

from geodino.errors import InputError


def file_keys(task_type: str) -> dict[str, str]:
    """key -> which suffixes (`images`, `rasters`, `boxes`) for the file keys of a task type's config."""
    if task_type == "segmentation":
        return {k: "images" for k in ("train_images", "train_masks", "val_images", "val_masks")}
    if task_type == "canopy":
        keys = ("train_images", "train_chms", "val_images", "val_chms", "predict_images")
        return {k: "rasters" for k in keys}
    if task_type == "detection":
        return {
            "train_images": "images",
            "train_boxes": "boxes",
            "val_images": "images",
            "val_boxes": "boxes",
            "predict_images": "images",
        }
    return {}


def precheck_inputs(name: str, task_type: str, cfg: Any, data: Any) -> None:
    """Open task `name`'s named dataset (`data`, the runner's adapter, else its config's `data`) and list the files
    of its file keys (`file_keys`); a missing path or a folder without such files raises one InputError that names
    `tasks.<name>.<key>`. The file keys of a task fed by a named dataset are left to it, except `predict_images`."""
    from geodino.eval import dense
    from geodino.eval.datasets import build_dataset

    named = data if data is not None else getattr(cfg, "data", None)
    adapter = named is not None and bool(getattr(named, "name", ""))
    if adapter:
        build_dataset(named, "train")
    from geodino.eval.boxes import BOX_SUFFIXES

    suffixes = {"images": dense.IMAGE_SUFFIXES, "rasters": dense.RASTER_SUFFIXES, "boxes": BOX_SUFFIXES}
    words = {"images": "image", "masks": "mask", "chms": "CHM", "boxes": "box annotation"}
    for key, kind in file_keys(task_type).items():
        value = getattr(cfg, key, None)
        if not value or (adapter and key != "predict_images"):
            continue
        what = words[key.rsplit("_", 1)[-1]]
        try:
            dense.list_files(value, suffixes[kind], what)
        except InputError as exc:
            raise InputError(f"tasks.{name}.{key}: {exc}") from exc
