"""The run folder of a pretraining run: made and locked, the checkpoint to resume from chosen (`checkpoint.resume`)
and checked against this run, and a used folder's housekeeping (killed writers' partial checkpoints removed,
Lightning's `hpc_ckpt_*` files set aside), deferred until the start is accepted."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

from geodino.errors import CheckpointError, InputError
from geodino.train.config import PretrainConfig
from geodino.train.pretrain_build import world_size
from geodino.train.resume_paths import same_paths_as_saved
from geodino.train.run_start import Start


def process_rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", os.environ.get("LOCAL_RANK", "0"))) or 0)


def prepare_output(cfg: PretrainConfig, start: Start) -> tuple[Path, Path | None]:
    """Make and lock the run folder (listed in `start.made` when new); return it and the checkpoint to resume from
    (or None). A used folder's housekeeping (a killed run's half-written checkpoints removed, `hpc_ckpt_*` moved
    aside) waits in `start.later` until the start is accepted."""
    from geodino.io import make_dirs
    from geodino.run_lock import lock_run_folder
    from geodino.train.checkpointing import latest_checkpoint

    fresh = not Path(cfg.output_dir).expanduser().exists()
    out = make_dirs(Path(cfg.output_dir).expanduser(), what="output_dir")  # removed again if the run fails on input
    if process_rank() == 0:
        lock_run_folder(out)
        if fresh:  # listed once this run holds it: no other run writes into it
            start.made.append(out)
        start.later += [
            partial(clear_partial_checkpoints, out / "checkpoints"),
            partial(set_aside_hpc_checkpoints, out),
        ]
    resume = cfg.checkpoint.resume
    existing = latest_checkpoint(out / "checkpoints")
    if resume == "never":
        if existing is not None:
            raise InputError(
                f"output_dir {out} already holds checkpoints ({existing.name}); resume with checkpoint.resume=auto "
                "or choose another output_dir"
            )
        return out, None
    if resume == "auto":
        return out, existing
    path = Path(resume).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint.resume={resume} not found; pass an existing checkpoint, auto or never")
    return out, path


def clear_partial_checkpoints(folder: Path) -> None:
    """Remove the checkpoints killed runs were writing (never complete; a sharded one is a folder) with the
    writer-aware `sweep_held_folder`: this run holds the folder, so a checkpoint's temporary is a killed run's unless
    its writer runs here (before, every `.*.tmp-*` went, a live writer's too); other outputs' temporaries go only when
    their writers are gone. A gather's copy of a sharded one may be a live export's or init_from's: `sweep_gathers`
    (on resume) removes only dead writers'."""
    from geodino.io_temps import sweep_held_folder
    from geodino.models.checkpoints.files import GATHER_SUFFIX

    sweep_held_folder(folder, held=lambda target: target.endswith(".ckpt"), skip=lambda n: n.endswith(GATHER_SUFFIX))


def set_aside_hpc_checkpoints(out: Path) -> None:
    """Move `hpc_ckpt_*.ckpt` files out of the run folder, with one line naming them. Lightning's SLURM handler wrote
    them in earlier geodino versions from inside a signal handler (mid-step, not atomically), and under SLURM
    Lightning itself still resumes from the newest one whenever `fit` gets no checkpoint (a folder without step
    checkpoints), i.e. from a state no step ended in. geodino resumes only from its step checkpoints: the files go
    (renamed, nothing deleted) into `checkpoints/ignored-<timestamp>/`, where Lightning does not look (it lists the
    run folder only, every name that contains `hpc_ckpt_`)."""
    from geodino.train.checkpointing import move_aside

    found = sorted(p for p in out.iterdir() if "hpc_ckpt_" in p.name and p.is_file())
    if not found:
        return
    aside = move_aside(found, out / "checkpoints", "ignored")
    names = ", ".join(p.name for p in found)
    print(
        f"geodino: ignoring {names} in {out} (written mid-step by Lightning's SLURM handler in an earlier geodino "
        f"version, not safe to resume from): moved to {aside}/; this run resumes only from step checkpoints",
        file=sys.stderr,
    )


def check_resume(
    cfg: PretrainConfig, out: Path, resume: Path, backbone_config: dict[str, Any], start: Start
) -> int | None:
    """Check the checkpoint to resume from fits this run; the step it was saved at (None when unknown). Moving the
    later checkpoints aside waits in `start.later`."""
    from geodino.models.checkpoints.files import load_meta
    from geodino.train import checkpointing as ck

    try:
        saved = load_meta(resume)  # a sharded folder: its meta.pt only (the weights are Lightning's to load)
    except CheckpointError as exc:
        if cfg.checkpoint.resume != "auto":
            raise
        raise CheckpointError(
            f"the newest checkpoint of {out}, {resume.name}, is corrupt or truncated; delete it to resume from "
            "the one before, or pass checkpoint.resume=PATH"
        ) from exc
    ck.check_resume_fits(saved, resume, backbone_config)
    mine = same_paths_as_saved((saved.get("geodino") or {}).get("config"), cfg, out)  # `data/`, a moved folder
    ck.check_resume_config(saved, resume, mine, cfg.batch_size * world_size(cfg))
    resume_step = saved.get("global_step")
    if not isinstance(resume_step, int):
        resume_step = (saved.get("geodino") or {}).get("step")
    del saved
    if process_rank() == 0 and isinstance(resume_step, int):
        from geodino.train.checkpointing import abandon_and_say

        # the later checkpoints belong to the branch this run abandons (see `abandon_later_checkpoints`)
        why = f"resuming from step {resume_step}"
        start.later.append(partial(abandon_and_say, out / "checkpoints", resume_step, resume, why))
    return resume_step
