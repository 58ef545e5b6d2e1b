"""An image-folder dataset's band count (RGB or not) and DN -> reflectance rule (`InputScaling.settle`), settled
once over the files of all its splits and kept for the process while those files are unchanged.

Why: a probe builds each split of the dataset (train, val, test), and a suite builds them twice (its check, then
the task), each build settling over every file of every split: 18 header-cache lookups per file (two stats each:
the file and its `.aux.xml`) and a listing per class folder of each split, ~75 s of a 20,000-chip probe whose
features were all cached. The first build settles; the others take its result (`_MEMO`), checked against each
file's stamp as `geodino.data.headers` keys its cache (`header_stamp`: mtime, size and sidecar), so an image
rewritten in place, added or removed settles again. Each build gets its own `InputScaling` (copied state), as
before, so what one split's reads note does not leak into another's, holding the backbone that build was given:
the memo keeps none (a model kept alive for the process), and the key has the record's mean/std beside its DN
scale, whose units warning (`InputScaling._warn_units`) each backbone gets for itself. A rule settled over a file
changed within `io_stamps.RACY_NS` is not kept (as the raster index's memo and the probe's folder listings): a
rewrite within the same tick of a coarse clock keeps mtime and size, and the rule of 16-bit data with an 8-bit
record depends on the pixels.
"""

from __future__ import annotations

import copy
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from geodino.eval.datasets import DatasetConfig
    from geodino.eval.scaling import InputScaling

__all__ = ["settled_rule"]

MEMO_SIZE = 4  # datasets kept: a suite's tasks on a few folders
_MEMO: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], bool, InputScaling]] = OrderedDict()
_COPIED = ("fixed", "declared", "kinds", "seen", "warned", "used")  # InputScaling's containers a build may fill


def settled_rule(
    cfg: DatasetConfig,
    root: Path,
    folders: list[Path],
    backbone: Any,
    list_files: Callable[[Path], list[Path]],
) -> tuple[bool, InputScaling]:
    """(whether greyscale photos read as RGB, the settled `InputScaling`) of the image folder dataset at `root`
    whose split folders are `folders` (`list_files`: a folder's image files), from the process's memo when the
    same settings met the same files before."""
    from geodino.data.headers import header_stamp
    from geodino.eval.scaling import InputScaling, check_data_offset

    keys = ("data.scale", "data.offset")
    check_data_offset(cfg.scale, cfg.offset, keys)
    scaling = InputScaling(backbone, cfg.scale, cfg.offset, keys=keys, file_scale=cfg.file_scale)
    start = time.time_ns()  # before the stamps: a file changed from here on is young
    files = [f for d in folders for f in list_files(d)]
    named = None if not cfg.bands else cfg.bands == ["rgb"] or len(cfg.bands) == 3
    key = (cfg.name, str(root), tuple(os.path.realpath(d) for d in folders), named, *_settings(scaling))
    stamps = tuple((str(f), header_stamp(f)) for f in files)
    kept = _MEMO.get(key)
    if kept is not None and kept[0] == stamps:
        _MEMO.move_to_end(key)
        return kept[1], _copy(kept[2], backbone)
    from geodino.data.images import dataset_bands
    from geodino.eval.datasets import read_array

    # a file whose band count differs from the others' (a 4-band TIFF among RGB PNGs) is one line naming it, from
    # the headers, before any feature is extracted (it crashed the batching with a torch.stack traceback)
    rgb = dataset_bands(files, f"dataset {cfg.name!r} in {root}", rgb=named) == 3
    scaling.settle(files, lambda p: (read_array(p, rgb), None))
    if _settled_stamps(stamps, start):
        _MEMO[key] = (stamps, rgb, _copy(scaling, None))
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    else:  # an entry of these settings over older stamps is no use now
        _MEMO.pop(key, None)
    return rgb, scaling


def _settled_stamps(stamps: tuple[tuple[str, Any], ...], start_ns: int) -> bool:
    """Whether every file (and its sidecars) stat and was last changed more than `RACY_NS` before `start_ns`, by
    their ctimes (`headers.stamp_is_young`, the header cache's own rule, sidecars included: a rewrite dated back to an
    old mtime by `cp -p` or an archive is fresh by its ctime): only then is a rule kept, its stamps sure to move with
    any later change."""
    from geodino.data.headers import stamp_is_young

    return all(s is not None and not stamp_is_young(s, start_ns) for _, s in stamps)


def _settings(scaling: InputScaling) -> tuple[Any, ...]:
    """What decides the rule besides the files: the explicit scale/offset, whether files' declarations are read,
    and the backbone's recorded DN scale (its values and where it is recorded: a suite's check builds without the
    backbone, its task with one that may record nothing, and both share the memo then), with the record's
    mean/std, which decide its units warning (`InputScaling._warn_units`)."""
    rec = scaling.recorded
    if rec is None:
        return scaling.scale, scaling.offset, scaling.file_scale, scaling.keys, None
    scale, offset = np.asarray(rec[0]), np.asarray(rec[1])
    norm = getattr(scaling.backbone, "normalization", None) or {}
    stats = tuple(repr(norm.get(k)) for k in ("mean", "std"))
    recorded = (scale.tobytes(), scale.shape, offset.tobytes(), offset.shape, rec[2], stats)
    return scaling.scale, scaling.offset, scaling.file_scale, scaling.keys, recorded


def _copy(scaling: InputScaling, backbone: Any) -> InputScaling:
    """A settled `InputScaling` of its own holding `backbone` (shallow: the recorded rule shared, the containers
    copied)."""
    out = copy.copy(scaling)
    out.backbone = backbone
    for name in _COPIED:
        setattr(out, name, copy.copy(getattr(scaling, name)))
    return out
