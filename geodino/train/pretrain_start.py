"""The start of a pretraining run in its folder: the files it writes there (`config.yaml`, `data_paths.json`,
`schedules.png`) and the lines it says on the console (split from `pretrain.py`).

A re-run of a finished run (the same command after it completed: the checkpoint resumed from is at max_steps)
trains nothing, so it writes none of the start files: `config.yaml` keeps saying what ran, even when the re-run
changed a key a resume may change (logging, workers, ...); only a run folder without config.yaml gets them again.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.errors import ConfigError, plural
from geodino.train.config import PretrainConfig
from geodino.train.run_start import Start

__all__ = [
    "accelerator_device",
    "announce_start",
    "is_finished",
    "join_launched_group",
    "previous_config",
    "write_start_files",
]

if TYPE_CHECKING:
    import torch

log = logging.getLogger("geodino.train")


def join_launched_group(cfg: PretrainConfig, processes: int) -> bool:
    """Join the default process group now when a launcher started this process as one of several (torchrun's or a
    hand launch's `WORLD_SIZE` > 1, or an `srun` step of several tasks, turned into torchrun's variables as
    distillation does) for a multi-process strategy (`ddp`, `fsdp2`, `auto` over several `processes`): gloo on CPU,
    NCCL on this process's GPU. The start's checks (each rank reads its own run folder, data and init_from) are then
    agreed before anything is written (`refusals_agreed`): a rank that refused stopped alone while the others wrote
    their start files and waited in Lightning's rendezvous for it, for ever. The device is agreed while joining
    (`join_group`): a rank that sees no GPU stops every rank in one line (it raised alone in `set_device` while the
    others waited 30 min). Lightning skips its own `init_process_group` when a group is up
    (`_init_dist_connection`). Whether it joined; one process, or the ranks Lightning's launcher starts itself (no
    `RANK`): nothing."""
    import os

    import torch.distributed as dist

    from geodino.train.join_group import join_group
    from geodino.train.launcher import srun_world

    t = cfg.trainer
    if t.strategy in ("single", "ddp_spawn") or processes <= 1 or not dist.is_available():
        return False
    srun_world()  # srun with several tasks and no torchrun: torchrun's variables from SLURM's
    # a process Lightning's own launcher started (`trainer.devices=2` from one command) has WORLD_SIZE but no RANK,
    # and its rank 0 checks before it launches them: such a run is left to Lightning, as before
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1 or "RANK" not in os.environ or dist.is_initialized():
        return False
    # every rank's device agreed in the rendezvous, bounded and interruptible (shared with distillation)
    join_group(lambda: accelerator_device(t.accelerator), "trainer.accelerator")
    return True


def accelerator_device(accelerator: str) -> torch.device:
    """This process's device for `trainer.accelerator`: its GPU (`local_gpu`) for a CUDA accelerator, the Apple GPU
    for mps, else the CPU. An accelerator with no such device visible is one line (Lightning raised
    `MisconfigurationException: No supported gpu backend found!` with its traceback, after the run folder was made)."""
    import torch

    from geodino.train.launcher import local_gpu, on_cuda

    if accelerator == "mps":  # Lightning's MisconfigurationException and traceback otherwise
        if not torch.backends.mps.is_available():
            raise ConfigError(
                "trainer.accelerator=mps but no Apple GPU (MPS) is available; use trainer.accelerator=cpu"
            )
        return torch.device("mps")
    if not on_cuda(accelerator):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA device is visible; use trainer.accelerator=cpu"
        )
    return torch.device("cuda", local_gpu())


def is_finished(cfg: PretrainConfig, resume: Path | None, resume_step: int | None) -> bool:
    """Whether this start resumes a run that is complete already (nothing left to train; `finished_run`, shared
    with distillation)."""
    from geodino.train.finished_run import is_finished as finished

    return resume is not None and finished(resume_step, cfg.trainer.max_steps)


def write_start_files(
    cfg: PretrainConfig, out: Path, arch: Any, start: Start, resume: Path | None, resume_step: int | None
) -> None:
    """Rank zero, once every check passed: config.yaml, data_paths.json and schedules.png (an earlier run's kept in
    `start`); none of them on a re-run of a finished run (see the module docstring)."""
    from geodino.config import save_config
    from geodino.io import atomic_path
    from geodino.train.resume_paths import write_data_stamp

    if is_finished(cfg, resume, resume_step) and (out / "config.yaml").is_file():
        return  # nothing trains: what ran is recorded already (a run folder that lost it gets it back)
    before = previous_config(out) if resume is not None else None  # the start that wrote data_paths.json
    start.keep(out / "config.yaml", out / "schedules.png")
    with atomic_path(out / "config.yaml") as tmp:
        save_config(cfg, tmp)
    # what each data path names: a moved data folder still resumes (`resume_paths`); a resume with the paths
    # spelled as that start's keeps it, unlisted
    write_data_stamp(cfg, out, unchanged_from=before)
    log.info("schedules: %s", arch.schedules.plot(out / "schedules.png"))


def previous_config(out: Path) -> dict[str, Any] | None:
    """The run folder's config.yaml as a dict (None when it is missing or unreadable); distillation's start too."""
    import yaml

    try:
        got = yaml.safe_load((out / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return got if isinstance(got, dict) else None


def announce_start(
    cfg: PretrainConfig, init_lines: list[str], head_warmup: int, resume: Path | None, resume_step: int | None
) -> None:
    """Rank zero: say on stderr what the run starts from."""
    # said on the console (stderr, beside Lightning's own lines), not only in the log: what the run starts from
    for line in init_lines:
        print(f"geodino: init_from: {line}", file=sys.stderr)
    if head_warmup and resume is None:
        print(
            f"geodino: the heads train alone (backbone frozen) for the first {plural(head_warmup, 'step')}, "
            "then everything",
            file=sys.stderr,
        )
    if resume is not None:
        at = f" at step {resume_step} of {cfg.trainer.max_steps}" if isinstance(resume_step, int) else ""
        done = ": the run is already complete, nothing to train" * is_finished(cfg, resume, resume_step)
        print(f"geodino: resuming from {resume}{at}{done}", file=sys.stderr)
