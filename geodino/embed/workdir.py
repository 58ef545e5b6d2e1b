"""The work folder of a feature raster being written (`.NAME.partial/`): the plan record, the Zarr store and the
progress records that make a run resumable and shareable between processes.

Every record is written under a temporary name and renamed (`geodino.io.atomic_path`), so a kill never leaves a
half-written one; readers skip the temporary (dot) names.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geodino.embed.input_stamp import input_change, keep_input_record
from geodino.errors import GeoDinoError, InputError
from geodino.io import atomic_path
from geodino.io_temps import aside_name

__all__ = [
    "DONE",
    "PLAN_FILE",
    "STORE",
    "WorkDirGone",
    "check_grid",
    "check_output_grid",
    "check_partial",
    "check_store",
    "damaged",
    "done_blocks",
    "init_work_dir",
    "input_variables",
    "kept_for_resume",
    "mark_done",
    "mark_rows",
    "output_lock",
    "output_of",
    "partial_blocks",
    "remove_stale_temps",
    "settings_diff",
    "valid_cells",
    "wait_for",
    "work_dir_for",
]

PLAN_FILE = "plan.json"
STORE = "store.zarr"
DONE = "done"
_OUTS: dict[Path, Path] = {}  # work folder -> output, of `work_dir_for` in this process (a cut name has no inverse)


class WorkDirGone(InputError):
    """The work folder was removed while this run wrote into it: what is there now is not this run's to remove."""


def work_dir_for(out: Path) -> Path:
    """The deterministic work folder of an output (shared by resumed runs and parallel ranks): `.NAME.partial`, a
    long NAME cut (`aside_name`) so that it stays a valid file name."""
    _OUTS[work := aside_name(out, ".partial")] = out
    return work


def output_of(work: Path) -> Path:
    """The output whose work folder is `work` (the inverse of `work_dir_for`)."""
    name = work.name
    inverse = name[1 : -len(".partial")] if name.startswith(".") and name.endswith(".partial") else name
    return _OUTS.get(work) or work.with_name(inverse)


@contextlib.contextmanager
def output_lock(out: Path, cfg: Any) -> Iterator[None]:
    """One run at a time writes `out` and its work folder (`run_lock.locked_output`, the hidden `.NAME.geodino.lock`
    beside it), taken before the work folder is looked at or the backbone loads: a second run stops with one line
    naming the holder's pid (exit 2) instead of attaching to, or removing, the live run's work folder.

    Who locks: a single process (and the parent of `--workers`, whose spawned workers run `_run(finalize=False)` and
    take no lock: the parent holds it for them). Ranks of `--world-size N` legitimately share one output, so each
    takes a lock of its own rank (`.NAME.rankR.geodino.lock`): two processes of one rank are refused, and a rank
    refuses while a single-process run holds the output, as that run refuses while any rank holds one of its own
    (probes, `output_holder`: a start at the very same instant can slip between probe and lock)."""
    from geodino.embed.prepare import out_kind
    from geodino.io import make_dirs, refuse_folder_in_the_way
    from geodino.run_lock import locked_output, output_holder, rank_lock_path

    out_kind(out)
    refuse_folder_in_the_way(out)
    make_dirs(out.parent)  # the lock file sits beside the output
    single = cfg.world_size == 1
    rank = None if single else rank_lock_path(out, cfg.rank)
    with locked_output(out, what="output" if single else f"rank {cfg.rank} of output", lock_file=rank):
        holder = output_holder(out, ranks=single)
        if holder:
            raise InputError(
                f"output {out} is being written by another run ({holder}); wait for it to finish (a killed run "
                "frees it) or choose another --out (out= in Python)"
            )
        yield


@contextlib.contextmanager
def kept_for_resume(out: Path) -> Iterator[None]:
    """What a run that stops before its end says about its partial output (`.NAME.partial`, kept): interrupted
    (Ctrl-C, SIGTERM through the CLI) or a write the storage refused (a full disk) ends with how to finish it: run
    again with --resume (--resume --overwrite over an earlier output, which --resume alone keeps as complete).
    A removed work folder (a FileNotFoundError from the store) is the one-line `WorkDirGone`."""
    work = work_dir_for(out)
    try:
        yield
    except GeoDinoError:
        raise
    except FileNotFoundError as exc:
        if ((work / PLAN_FILE).exists() and (work / STORE).exists()) or out.exists():
            raise
        if work.name not in f"{exc} {exc.filename or ''}":  # not the work folder's: keeps its traceback
            raise
        raise WorkDirGone(
            f"the work folder {work} was removed while this run was writing into it (another run with "
            f"--overwrite, or a clean-up?); run it again"
        ) from exc
    except Exception as exc:
        from geodino.storage_errors import storage_error

        flags = "--resume --overwrite" if out.exists() else "--resume"
        again = f"then run it again with {flags} to finish {out} (its partial output {work} is kept)"
        line = storage_error(exc, again=again if work.exists() else None)
        if line is None:
            raise
        from geodino.io import StorageError

        raise StorageError(line) from exc
    except KeyboardInterrupt as exc:
        if work.exists() and not out.exists():
            exc.add_note(f"run it again with --resume to finish {out} (its partial output {work} is kept)")
        raise


def check_output_grid(work: Path, prep: Any) -> None:
    """Refuse, before anything is written, an output its format cannot place (`check_grid`), on the run's plan."""
    plan = prep.plan
    check_grid(output_of(work), plan.height_px, plan.width_px, plan.patch, upsample=bool(prep.ident.get("upsample")))


def check_grid(out: Path, height_px: int, width_px: int, patch: int | None, *, upsample: bool) -> None:
    """Refuse a `.zarr` output one cell wide or high (`geodino.embed.writers.check_zarr_grid`) for an input of
    `height_px` x `width_px`: the grid is the patch grid, or the input's pixels when upsampled. `patch` None (not
    known before the backbone loads) checks only the upsampled grid, which needs none."""
    from geodino.embed.plan import cells
    from geodino.embed.writers import check_zarr_grid

    if out.suffix.lower() != ".zarr":
        return
    if upsample:
        check_zarr_grid(out, height_px, width_px, unit="pixels")
    elif patch:
        check_zarr_grid(out, cells(height_px, patch), cells(width_px, patch), unit="cells")


def _write_text(path: Path, text: str) -> None:
    # not synced to the disk (durable=False): a record per row range would cost two fsyncs each, and the chunks it
    # describes are not synced either (see atomic_path); a power loss is recovered with --overwrite, a kill by --resume
    with atomic_path(path, durable=False) as tmp:
        tmp.write_text(text)


def _records(work: Path, suffix: str) -> list[Path]:
    d = work / DONE
    return [p for p in d.glob(f"*{suffix}") if not p.name.startswith(".")] if d.exists() else []


def init_work_dir(work: Path, prep: Any, *, join: bool) -> None:
    """Create (or check, when resuming/joining) the work folder: plan record, empty store, progress folder.

    `prep` is the `PreparedRun` of `geodino.embed.pipeline`."""
    from geodino.embed.store_create import create_store  # the files xarray wrote, without importing it

    plan_file = work / PLAN_FILE
    check_output_grid(work, prep)
    if not join and work.exists():
        from geodino.run_lock import output_holder

        out = output_of(work)
        holder = output_holder(out, ranks=True)
        if holder:  # a live run writes it: --resume or --overwrite would attach to it or remove its work
            raise InputError(
                f"partial output {work} is being written by another run ({holder}); wait for it to finish (a killed "
                "run frees it) or choose another --out (out= in Python)"
            )
        raise InputError(
            f"partial output {work} exists; pass --resume to finish it or --overwrite to start again (resume=True or "
            "overwrite=True in Python)"
        )
    ident = with_input_variables(jsonable(prep.ident), prep.source)
    if plan_file.exists():
        check_partial(work, ident, input_identity=prep.meta.get("input_identity"))
        check_store(work)
        return
    if work.exists():
        # no plan record: nothing here belongs to a run this one may continue (a folder deleted while a writer
        # still ran gets chunks and done records back, but no plan); its done records would skip blocks never
        # written into the new store, so they go with it
        from geodino.embed.writers import remove_tree

        remove_tree(work / DONE)
        remove_tree(work / STORE)
    work.mkdir(parents=True, exist_ok=True)
    plan, info = prep.plan, prep.source.info
    create_store(
        work / STORE,
        height=plan.out_height,
        width=plan.out_width,
        transform=plan.out_transform,
        crs=info.crs,
        band_names=prep.band_names,
        dtype=prep.ident["dtype"],
        chunk=plan.chunk,
        metadata=prep.meta,
    )
    (work / DONE).mkdir(exist_ok=True)
    if prep.meta.get("input_identity"):  # a local file: its stat for `_check_same_input` (`input_stamp`)
        keep_input_record(work, ident["input"])
    _write_text(plan_file, json.dumps(ident, indent=1))  # written last: its presence means the store is ready


def check_partial(work: Path, ident: dict[str, Any], *, input_identity: str | None = None) -> None:
    """Refuse to continue the partial output in `work` with settings other than those it was started with (one
    line naming the options that differ, with both values), so a resume never mixes two rasters; nor from an input
    whose content (`input_identity`, `provenance.input_identity`) is not what the store's metadata records
    (`_check_same_input`)."""
    old = json.loads((work / PLAN_FILE).read_text())
    if "blocks" in ident and "blocks" not in old:
        old["blocks"] = _recorded_blocks(work, old, ident)
    new = jsonable(ident)
    for key in _RECORDED_SINCE:  # compared when both records hold it: an earlier version's record lacks it
        if (key in old) != (key in new):
            old.pop(key, None)
            new.pop(key, None)
    diff = settings_diff(flat_settings(old), flat_settings(new), every=True)
    if diff:
        hint = (  # which options chose the variables: a rewritten store gives others for the same flags
            " (a datacube's variables come from variable=, --sensor and --bands, and from the store's own variables: "
            "pass those of the first run, on the same store)"
            if any(text.startswith("cube variables ") for text in diff)
            else ""
        )
        raise InputError(
            f"the partial output {work} was started with other settings: {'; '.join(diff)}; rerun with the "
            f"same settings{hint} or pass --overwrite to start again (overwrite=True in Python)"
        )
    _check_same_input(work, ident, input_identity)


def _check_same_input(work: Path, ident: dict[str, Any], identity: str | None) -> None:
    """Refuse to resume from an input replaced under its path since the partial output was started: the rows
    written come from the old file, the rest would come from the new one. The run record (`plan.json`) leaves the
    input's content out, so that a record of an earlier version still resumes; the store's metadata holds it
    (`input_identity`, the output's GEODINO_INPUT_IDENTITY) since it was recorded, the work folder its stat (an
    edit past the first 64 KiB: `input_stamp`). A store without it, or an input without one (a VRT), resumes as
    before."""
    try:
        recorded = json.loads((work / STORE / ".zattrs").read_text()).get("input_identity")
    except (OSError, ValueError, AttributeError):
        return  # no readable store: `check_store` says so
    change = input_change(work, ident.get("input"), recorded, identity) if identity else None
    if change:
        raise InputError(
            f"the input {ident.get('input')} of {output_of(work)} changed since its partial output {work} was "
            f"started (then {change[0]}, now {change[1]}); restore that input to resume, or pass "
            "--overwrite to start again from this one (overwrite=True in Python)"
        )


# keys a run record holds since a later version; an earlier record without one resumes as it did (unchecked)
_RECORDED_SINCE = ("input_variables", "time")  # "time": a raster's acquisition time (a cube's date was before)


def input_variables(source: Any) -> list[str] | None:
    """The datacube variables `source` reads, in the order of its bands (`cube_bands.read_variables`): the one
    variable read, or the per-band variables stacked (after --bands picks some); None for other inputs."""
    from geodino.embed.cube_bands import read_variables

    base = getattr(source, "base", source)  # a window (--bbox/--window) of a cube reads the cube's bands
    if getattr(base, "kind", None) != "datacube" or getattr(base, "da", None) is None:
        return None
    return read_variables(base.da)


def with_input_variables(ident: dict[str, Any], source: Any) -> dict[str, Any]:
    """A run record with the datacube variables its input reads (`input_variables`): the bands' count and the
    options alone do not tell them (variable=B08 and variable=B04 are both one band; a store rewritten with one more
    variable stacks others for the same --bands 1,2,3,4), so a resume reading others is refused (`check_partial`)."""
    names = input_variables(source)
    return ident if names is None else {**ident, "input_variables": names}


def _recorded_blocks(work: Path, old: dict[str, Any], ident: dict[str, Any]) -> Any:
    """The backbone blocks of a partial output whose plan record predates `blocks` (it kept only the layer name,
    and a name's rule may have changed since: cd448c2 moved `four_even` on depths not divisible by 4): the store's
    metadata holds the blocks the run used. Without it, the recorded name as this version resolves it, said in a
    warning (nothing else tells which blocks that run used)."""
    import warnings

    try:
        attrs = json.loads((work / STORE / ".zattrs").read_text())
        blocks = json.loads(attrs["layers"]) if isinstance(attrs["layers"], str) else attrs["layers"]
        if isinstance(blocks, list) and all(isinstance(b, int) for b in blocks):
            return blocks
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if old.get("layers") != jsonable(ident).get("layers"):
        return None  # the names differ: that line says it
    warnings.warn(
        f"the partial output {work} records layers={old.get('layers')!r} but not the blocks it used; taking "
        f"{ident['blocks']} (the name as this version resolves it)",
        stacklevel=3,
    )
    return ident["blocks"]


def damaged(work: Path, why: str) -> InputError:
    """The one-line error for a work folder that cannot be continued (`why`: what is wrong with it)."""
    return InputError(
        f"the work folder {work} is damaged ({why}); delete it, or run again with --overwrite instead of --resume "
        "(overwrite=True instead of resume=True in Python)"
    )


def check_store(work: Path) -> None:
    """Refuse a work folder whose plan record is there but whose store is not (a kill between the renames that
    turn it into the output, or a folder partly deleted): its done records describe data that is gone."""
    for rel in (STORE, f"{STORE}/.zgroup", f"{STORE}/embedding/.zarray"):
        if not (work / rel).exists():
            raise damaged(work, f"{rel} is missing")


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove the temporaries of output `out` left by killed runs (a kill during the final conversion: the COG
    temporary, its GDAL overviews, a folder set aside); those of live writers, this one included, are kept.
    `geodino.io.sweep_temps` decides for every atomic output (writer tag, pid, age); returns what was removed."""
    from geodino.io import sweep_temps

    return sweep_temps(out)


# Where a setting of a run record (`PreparedRun.ident`, `plan.*` its plan) or of a feature raster's metadata
# (`PreparedRun.meta`) comes from, named as the user passes it (option names of docs/embed.md).
SETTING_NAMES = {
    "backbone": "backbone",
    "model_spec": "backbone",
    "fingerprint": "backbone weights",
    "model_fingerprint": "backbone weights",
    "plan.patch": "patch size",
    "dim": "feature count",
    "input": "input",
    "input_identity": "input content",  # a finished output's (GEODINO_INPUT_IDENTITY); a partial's: _check_same_input
    "shape": "input size",
    "plan.height_px": "input size",
    "plan.width_px": "input size",
    "plan.transform": "input georeferencing",
    "window": "window/bbox (input col, row, width, height)",
    "input_window": "window/bbox (input col, row, width, height)",
    "bands": "bands",
    "input_bands": "bands",
    "input_variables": "cube variables",
    "nodata": "nodata",
    "input_nodata": "nodata",
    "scale": "sensor/scale",
    "input_scale": "sensor/scale",
    "plan.tile_px": "tile",
    "tile": "tile",
    "plan.overlap_px": "overlap",
    "overlap": "overlap",
    "margin": "margin",
    "blend": "blend",
    "layers": "layers",
    "blocks": "layers (blocks)",
    "layer_mode": "layer_mode",
    "norm": "norm",
    "final_norm": "norm",
    "l2": "l2_normalize",
    "l2_normalize": "l2_normalize",
    "dtype": "dtype",
    "upsample": "upsample",
    "grid": "upsample",
    "plan.chunk": "chunk",
    "plan.block_rows": "block_rows",
    "plan.max_block_cols": "max_block_cols",
}
# a setting that follows from another one is named only when that one agrees (one cause, one name)
_FOLLOWS = {
    "backbone weights": ("backbone",),
    "patch size": ("backbone",),
    "feature count": ("backbone", "layers", "layers (blocks)", "layer_mode"),
    "layers (blocks)": ("backbone", "layers"),  # another name or backbone gives other blocks
    "input content": ("input",),  # another file, other content
    "input size": ("input", "bands", "cube variables", "window/bbox (input col, row, width, height)"),
    "cube variables": ("input", "bands"),
    "input georeferencing": ("input", "window/bbox (input col, row, width, height)"),
    "margin": ("overlap",),  # its default is overlap/4
    "l2_normalize": ("dtype",),  # int8 forces it
}


def flat_settings(record: dict[str, Any]) -> dict[str, Any]:
    """A run record or metadata with its nested plan flattened (`plan.tile_px`), keys as in `SETTING_NAMES`."""
    out = {k: v for k, v in record.items() if k != "plan"}
    out.update({f"plan.{k}": v for k, v in (record.get("plan") or {}).items()})
    return out


def _same(key: str, a: Any, b: Any) -> bool:
    text = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in (a, b)]
    if key == "input" and all(isinstance(v, str) and "://" not in v and not v.startswith("/vsi") for v in (a, b)):
        return os.path.realpath(a) == os.path.realpath(b)  # ./in.tif and in.tif are one input
    return text[0] == text[1]


def _show(v: Any) -> str:
    """A value for the message; a long one keeps its start and end (a path's file name, a hash's both ends)."""
    text = v if isinstance(v, str) else json.dumps(v)
    return text if len(text) <= 72 else f"{text[:24]}...{text[-45:]}"


def settings_diff(old: dict[str, Any], new: dict[str, Any], *, every: bool = False) -> list[str]:
    """The settings that differ between two flat records (see `flat_settings`) under the user's option names, as
    "tile 32 (this run: 64)", in the order of `SETTING_NAMES`; only keys both records hold are compared (an
    output written by an earlier version lacks some). `every`: also keys `SETTING_NAMES` does not know, by their
    own name (a run record, all of whose keys matter; metadata also holds keys that do not, e.g. the version)."""
    keys = dict(SETTING_NAMES)
    for spec, weights in (("backbone", "fingerprint"), ("model_spec", "model_fingerprint")):
        if weights in old and weights in new and _same(weights, old[weights], new[weights]):
            keys.pop(spec)  # the same weights named another way (a relative and an absolute path) are one backbone
    if every:
        keys.update({k: k for k in sorted(set(old) | set(new)) if k not in SETTING_NAMES})
    found: dict[str, str] = {}
    for key, name in keys.items():
        if key in old and key in new and not _same(key, old[key], new[key]) and name not in found:
            found[name] = f"{name} {_show(old[key])} (this run: {_show(new[key])})"
        elif every and (key in old) != (key in new) and name not in found:
            found[name] = f"{name} {_show(old.get(key, '(none)'))} (this run: {_show(new.get(key, '(none)'))})"
    return [text for name, text in found.items() if not any(c in found for c in _FOLLOWS.get(name, ()))]


def jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """`d` as it reads back from JSON (tuples become lists, other objects their text)."""
    return json.loads(json.dumps(d, default=str))


def done_blocks(work: Path) -> set[int]:
    """Indexes of the blocks recorded done."""
    return {int(p.stem) for p in _records(work, ".done")}


def mark_done(work: Path, index: int, n_valid: int | None = None) -> None:
    """Record block `index` as written (its file holds the block's count of valid cells)."""
    _write_text(work / DONE / f"{index}.done", "" if n_valid is None else str(int(n_valid)))


def mark_rows(work: Path, index: int, rows_done: int, n_valid: int) -> None:
    """Record that block `index` is written up to output row `rows_done` (exclusive), with `n_valid` valid cells
    so far: a resume restarts the block there instead of at its top (written after the data)."""
    _write_text(work / DONE / f"{index}.rows", f"{int(rows_done)} {int(n_valid)}")


def partial_blocks(work: Path) -> dict[int, tuple[int, int]]:
    """Blocks written part-way: index -> (first output row still to write, valid cells written so far)."""
    out: dict[int, tuple[int, int]] = {}
    for f in _records(work, ".rows"):
        try:
            rows, n_valid = (int(v) for v in f.read_text().split())
        except ValueError:  # unreadable record: redo the whole block
            continue
        out[int(f.stem)] = (rows, n_valid)
    return out


def valid_cells(work: Path) -> int | None:
    """Valid (not nodata) cells over all finished blocks; None when a block did not record its count."""
    total = 0
    for f in _records(work, ".done"):
        text = f.read_text().strip()
        if not text.isdigit():
            return None
        total += int(text)
    return total


def wait_for(path: Path, timeout: float = 600.0) -> None:
    """Wait until rank 0 has written `path` (the plan record)."""
    t0 = time.monotonic()
    while not path.exists():
        if time.monotonic() - t0 > timeout:
            raise InputError(f"rank waited {timeout:.0f}s for {path}; is rank 0 running with the same output?")
        time.sleep(0.2)
