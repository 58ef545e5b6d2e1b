"""The fit of a pretraining run and its end: Ctrl-C as geodino's KeyboardInterrupt, then a stopped run ended, or
the teacher exported and the curves plotted (`pretrain.py` calls these after building the module and trainer)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any

from geodino.train.config import PretrainConfig
from geodino.train.data_note import corrupt_note, keep
from geodino.train.finished_run import export_is_current

log = logging.getLogger("geodino.train")


def _corrupt_note(trainer: Any) -> str:
    """The data note of a finished fit (`data_note.corrupt_note` of its training loader): "; N corrupt images
    replaced", "" for none or no training loader (a finished run's re-run)."""
    return corrupt_note(getattr(trainer, "train_dataloader", None), trainer.world_size)


def fit(trainer: Any, module: Any, resume: Path | None) -> None:
    """`trainer.fit`, with Ctrl-C turned into geodino's KeyboardInterrupt (one line, exit code 130). A sharded
    checkpoint folder resumed under a strategy other than FSDP2 is gathered into each process (`sharded_resume`)."""
    if resume is not None:
        from geodino.models.checkpoints.files import sweep_gathers

        sweep_gathers(resume.parent)  # what killed gathers of sharded folders (below, export, init_from) left there
    if resume is not None and resume.is_dir():
        from lightning.pytorch.strategies import ModelParallelStrategy

        from geodino.train.sharded_resume import read_sharded_folders

        if not isinstance(trainer.strategy, ModelParallelStrategy):  # FSDP2's own reader takes folders
            read_sharded_folders(trainer)
    try:
        with warnings.catch_warnings():
            # the loader starts at the checkpoint's step (start_step), so a mid-epoch resume is exact (tested
            # bit-identical); Lightning cannot know that and warns of "unreliable results" on every resume
            warnings.filterwarnings("ignore", message=".*your dataloader is not resumable")
            trainer.fit(module, ckpt_path=str(resume) if resume is not None else None)
    except SystemExit as exc:  # Lightning answers Ctrl-C with exit(1) and leaves SIGINT ignored
        if not trainer.interrupted:
            raise
        import signal

        with contextlib.suppress(ValueError):  # not the main thread: nothing to restore
            signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from exc  # geodino's one line and exit code 130, as every other command


def finish_run(cfg: PretrainConfig, out: Path, trainer: Any, ckpt_cb: Any) -> None:
    """After fit: end a stopped run, else export the teacher (a re-run of a finished run, which saved no checkpoint,
    keeps an export of its final checkpoint as it is: `export_is_current`) and plot the curves; then wait for every
    rank."""
    from geodino.train import checkpointing as ck

    if ckpt_cb.stopped_at is not None:  # Ctrl-C or SIGTERM: the step in progress finished and was saved
        from geodino.train.stop import end_stopped_run  # after SLURM's SIGUSR1, rank 0 requeues the job

        end_stopped_run(
            ckpt_cb.stopped_at,
            cfg.trainer.max_steps,
            ckpt_cb.stop.signal,
            ckpt_cb.last_path,
            rank_zero=trainer.is_global_zero,
        )
        raise KeyboardInterrupt
    if ckpt_cb.stop.signal is not None:  # it came during the last step: nothing left to stop
        from geodino.train.stop import say_completed

        say_completed(cfg.trainer.max_steps, ckpt_cb.stop.signal)
    final = ckpt_cb.last_path or ck.latest_checkpoint(out / "checkpoints")
    export = out / "export" / "teacher.pth"
    if cfg.checkpoint.export_at_end and final is not None and trainer.is_global_zero:
        if ckpt_cb.last_path is None and export_is_current(final, export):  # a finished run's re-run: as it was
            log.info("export of %s kept: %s", final.name, export)
        else:
            ck.export(final, export, overwrite=True)
    if trainer.is_global_zero:
        from geodino.train.curves import plot_run

        keep(out, _corrupt_note(trainer))

        curves = plot_run(out, n_prototypes=cfg.ssl.dino.head_n_prototypes)
        if curves is not None:
            log.info("training curves: %s", curves)
    trainer.strategy.barrier("geodino_pretrain_done")
