"""The probe runner's input check: every task's data opened before any backbone loads or any task runs.

A suite runs its tasks one after another; a typo in the last task's folder used to surface only when that task
started, after the earlier tasks had run (an hour on a real suite) and with their results half-written. Here the
named datasets are opened and every file key (images, masks, CHMs, boxes) is listed as the task will list it, so a
missing or empty folder stops the suite in a second with one line naming the task and key.

`task_keys_named` is the rule for every other error of a task: a ConfigError/InputError raised while a suite
task's config is parsed, checked or run that names a key of the task's config (`key=value`, or the key first in the
message, or as the advice "set KEY ...") names it as `tasks.<name>.<key>`, the dotted key a suite override sets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import typing
from collections.abc import Iterator
from typing import Any

from geodino.errors import ConfigError, InputError

_TASK_WORDS = ("classification", "segmentation", "canopy", "detection")
"""A probe's own name before a key in its messages ("segmentation head=..."): dropped once the task names the key."""
_CALL = re.compile(r"[A-Za-z_][\w.]*\([^()]*\)")
"""A Python call quoted in a message (`load_backbone(spec, bands=6)`): its keyword arguments keep their names."""


@functools.cache
def config_keys(schema: type) -> frozenset[str]:
    """The dotted keys of a config dataclass, nested dataclasses' keys included (`logreg.tol`, `data.root`)."""
    hints = typing.get_type_hints(schema)
    keys: set[str] = set()
    for f in dataclasses.fields(schema):
        keys.add(f.name)
        sub = hints.get(f.name)
        if isinstance(sub, type) and dataclasses.is_dataclass(sub):
            keys |= {f"{f.name}.{k}" for k in config_keys(sub)}
    return frozenset(keys)


def _key_names(schema: type) -> dict[str, str]:
    """word in a message -> the dotted key it stands for: every key of `schema`, plus the bare last part of a nested
    key that no other key shares and that is no plain word (`num_classes` of a classification task is
    `data.num_classes`; `scale` or `name` could be anything's)."""
    keys = config_keys(schema)
    last: dict[str, list[str]] = {}
    for k in keys:
        if "." in k:
            last.setdefault(k.rsplit(".", 1)[1], []).append(k)
    words = {w: ks[0] for w, ks in last.items() if len(ks) == 1 and w not in keys and "_" in w}
    return words | {k: k for k in keys}


def name_task_keys(message: str, name: str, schema: type) -> str:
    """`message` with each key of `schema` it names as `key=...` (and a key with _ or . it starts with, and a key
    right after the word "set": "set train_per_class <= 6") written `tasks.<name>.<key>`; a probe word before the
    first key ("segmentation head=...") is dropped. Unchanged when it names no key."""
    words = _key_names(schema)
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    named = re.compile(rf"(?<![^\s(\[,;])({alternatives})(?==)")  # a word of its own, not a spec's ?seed=0
    # a key first, not as key=...: only a key no sentence starts with (class_names, logreg.cs), not "features takes"
    keyish = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True) if "_" in w or "." in w)
    first = re.compile(rf"^(?:(?:{'|'.join(_TASK_WORDS)}):? )?(?:({alternatives})(?==)|({keyish})(?=[\s:]))")
    # advice "set KEY <= 6" / "set KEY to ...": a key of the task right after the word "set", not as key=...
    advice = re.compile(rf"(?<![^\s(\[,;])(set )({alternatives})(?![\w.=])")
    if not named.search(message) and not first.match(message) and not advice.search(message):
        return message
    full = lambda m: f"tasks.{name}.{words[m.group(1) or m.group(2)]}"
    message = first.sub(full, message, count=1)
    message = advice.sub(lambda m: f"{m.group(1)}tasks.{name}.{words[m.group(2)]}", message)
    # a keyword argument of a Python call the advice quotes (load_backbone(spec, bands=6)) is no config key
    calls = [m.span() for m in _CALL.finditer(message)]
    inside = lambda m: any(a < m.start() < b for a, b in calls)
    return named.sub(lambda m: m.group(0) if inside(m) else full(m), message)


@contextlib.contextmanager
def task_keys_named(name: str, schema: type) -> Iterator[None]:
    """Re-raise a ConfigError/InputError of task `name` (config dataclass `schema`) with its keys named as
    `tasks.<name>.<key>` (`name_task_keys`): same error object and type, only its line changes. Warnings given
    inside (the short-backbone layer set, input scaling) name their keys the same way through
    `geodino.user_keys.user_key`: a bare key (`layers`) is the task's key ending in it (`features.layers`)."""
    from geodino.user_keys import keys_named_by

    keys = config_keys(schema)

    def namer(key: str) -> str:
        nested = sorted((k for k in keys if k.endswith(f".{key}")), key=len)
        return f"tasks.{name}.{key if key in keys or not nested else nested[0]}"

    try:
        with keys_named_by(namer):
            yield
    except (ConfigError, InputError) as exc:
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (name_task_keys(exc.args[0], name, schema), *exc.args[1:])
        raise


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


def dataset_splits(task_type: str, cfg: Any, runner_adapter: bool) -> tuple[str, ...]:
    """The splits of its named dataset a task builds when it runs: the runner's adapter (`runner._call_task`) train
    and val; classification train, val and test (not with `eval_split=val`); segmentation and detection train and
    test (their `_samples`: scored on `data.test_split`, val unused)."""
    if runner_adapter:
        return ("train", "val")
    if task_type == "classification":
        return ("train", "val") if getattr(cfg, "eval_split", "test") == "val" else ("train", "val", "test")
    return ("train", "test")


@functools.cache
def _data_keys() -> type:
    """A schema of one key, `data` (a DatasetConfig): the keys of a task's named dataset as a suite writes them
    (`data.name`, `data.test_split`, ...), for `name_task_keys`."""
    from geodino.eval.datasets import DatasetConfig

    return dataclasses.make_dataclass("DataKeys", [("data", DatasetConfig)])


def _open_splits(name: str, named: Any, splits: tuple[str, ...]) -> Any:
    """Build each of `splits` of the named dataset `named` (listing and headers, as the task will, no pixels beyond
    a first image); an error is one line naming `tasks.<name>.data` (and the split past train) or the
    `tasks.<name>.data.<key>` it is about. Returns the first split's dataset."""
    from geodino.eval.datasets import build_dataset

    built = []
    for split in splits:
        try:
            built.append(build_dataset(named, split))
        except (ConfigError, InputError) as exc:
            if exc.args and isinstance(exc.args[0], str) and not exc.args[0].startswith("tasks."):
                line = name_task_keys(exc.args[0], name, _data_keys())
                where = f"tasks.{name}.data" + (f" ({split} split)" if split != "train" else "")
                exc.args = (line if line.startswith("tasks.") else f"{where}: {line}", *exc.args[1:])
            raise
    return built[0]


def _check_per_class(train: Any, per_class: int) -> None:
    """A classification task's `train_per_class` above a class's training images, refused now when the training
    split knows its labels unread (image folders, torchgeo's EuroSAT), or on multi-label data (BigEarthNet): each
    was refused only once the task ran, after the earlier tasks."""
    labels = getattr(train, "labels", None)
    multilabel = getattr(train, "task", "") == "multilabel"
    if not per_class or (labels is None and not multilabel):
        return
    import torch

    from geodino.eval.label_budget import budget_indices

    if multilabel:  # a [N, K] multi-hot stand-in: the budget's own line for multi-label data
        targets = torch.zeros(1, max(1, len(train.classes)))
    else:
        assert labels is not None  # returned above otherwise
        targets = torch.tensor([labels[i] for i in train.indices], dtype=torch.long)
    budget_indices(targets, 1.0, per_class, 0, list(train.classes))  # the task's own check and line


def precheck_inputs(name: str, task_type: str, cfg: Any, data: Any) -> None:
    """Open task `name`'s named dataset (`data`, the runner's adapter, else its config's `data`): every split the
    task will build (`dataset_splits`), so a missing test split stops the suite before an earlier task runs; and
    list the files of its file keys (`file_keys`). A missing path or a folder without such files raises one
    InputError that names `tasks.<name>.<key>` (`tasks.<name>.data`, with the split past train, for the named
    dataset's own errors). The file keys of a task fed by a named dataset are left to it, except `predict_images`."""
    from geodino.eval import dense

    named = data if data is not None else getattr(cfg, "data", None)
    adapter = named is not None and bool(getattr(named, "name", ""))
    if adapter:  # its folder, layout, bands and splits: one line naming the task's data key (the folder alone did not)
        train = _open_splits(name, named, dataset_splits(task_type, cfg, data is not None))
        if task_type == "classification" and data is None:
            _check_per_class(train, int(getattr(cfg, "train_per_class", 0) or 0))
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
