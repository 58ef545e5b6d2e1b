"""The checkpoint callback of a pretraining run: `step_XXXXXXXX.ckpt` every N steps, at a stop request and at the
end, written atomically, with `last.ckpt` pointing at the newest and only the last few kept (of the running branch:
a resume from an earlier step moves the later checkpoints aside first, `checkpointing.abandon_later_checkpoints`).

Kept apart from `geodino.train.module` (the LightningModule, which re-exports `CheckpointCallback`) and from
`geodino.train.checkpointing` (reading checkpoints, exporting the teacher, chaining stages; no Lightning). Lightning
keys a callback's state by its class name alone (`Callback.state_key` is the `__qualname__`, and this callback has no
state), so the move changes nothing in saved checkpoints.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning as L

from geodino.io import temp_name
from geodino.train import checkpointing as ckpt_lib

__all__ = ["CheckpointCallback", "remove_path"]


class CheckpointCallback(L.Callback):
    """Write `step_XXXXXXXX.ckpt` every N steps and at the end, atomically, and point `last.ckpt` at it.

    Every rank takes part (FSDP2 gathers or writes shards); the file is written under a temporary name and
    renamed by rank 0 after a barrier, so a killed run never leaves a half-written checkpoint under a final
    name, and a NaN-stopped run keeps its previous checkpoint untouched.
    """

    def __init__(self, folder: Path, every_n_steps: int, keep_last: int = 3, requeue: bool = False) -> None:
        from geodino.train.stop import REQUEUE_SIGNAL, SIGNALS, StopRequest

        self.folder = Path(folder)
        self.every = every_n_steps
        self.keep_last = keep_last
        self.last_saved_step = -1
        self.last_path: Path | None = None
        # Ctrl-C / SIGTERM (and SLURM's SIGUSR1 with `requeue`): finish the step, save it, stop (geodino.train.stop)
        self.stop = StopRequest(SIGNALS + ((REQUEUE_SIGNAL,) if requeue else ()))
        self.stopped_at: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # a rank ddp_spawn started (in its own process): its own lock of the run folder, and an end when its
        # launching process dies (geodino.train.spawned_rank); nothing in the launching process or other strategies
        if getattr(trainer.strategy, "_start_method", None) == "spawn" and trainer.world_size > 1:
            from geodino.train.spawned_rank import guard_spawned_rank

            guard_spawned_rank(self.folder.parent, trainer.global_rank)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop.install()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.stop.restore()  # here and in on_train_end: before the Trainer restores its own (its teardown)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every == 0:
            self.save(trainer)
        multi = trainer.world_size > 1
        if trainer.max_steps is not None and 0 < trainer.max_steps <= step:
            return  # the last step: a request now is no stop, the run is complete (pretrain says so)
        if self.stop.agreed(partial(trainer.strategy.reduce_boolean_decision, all=False) if multi else None):
            if step > 0 and step != self.last_saved_step:
                self.save(trainer)
            self.stopped_at = step
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the last save runs with the stop request still installed: a first Ctrl-C/SIGTERM while it writes lets it
        # finish (the run is complete); restored before it, the signal met the CLI's handler, which broke the write
        # off (exit 130, the steps since the last periodic checkpoint lost)
        try:
            if trainer.global_step != self.last_saved_step and trainer.global_step > 0:
                self.save(trainer)
        finally:
            self.stop.restore()

    def save(self, trainer: L.Trainer) -> Path:
        step = trainer.global_step
        final = self.folder / f"step_{step:08d}.ckpt"
        # the same temporary name on every rank (temp_name uses the pid, so take rank 0's)
        tmp = Path(trainer.strategy.broadcast(str(temp_name(final))))
        if trainer.is_global_zero:
            self.folder.mkdir(parents=True, exist_ok=True)
        trainer.strategy.barrier("geodino_ckpt_mkdir")
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # optimiser and loops too: a killed run resumes
        except BaseException as exc:
            if trainer.is_global_zero:
                remove_path(tmp)
            if isinstance(exc, OSError):  # a full disk or a lost mount: one line, not Lightning's traceback
                raise ckpt_lib.write_error(final, exc, step) from exc
            raise
        trainer.strategy.barrier("geodino_ckpt_written")
        if trainer.is_global_zero:
            try:
                if final.is_dir():
                    import shutil

                    shutil.rmtree(final)
                ckpt_lib.replace_durably(tmp, final)  # synced: a power loss leaves no empty checkpoint
                ckpt_lib.point_last(self.folder / "last.ckpt", final.name)
            except OSError as exc:
                remove_path(tmp)
                raise ckpt_lib.write_error(final, exc, step) from exc
            # among the running branch's checkpoints (steps up to this one): this one is always kept
            ckpt_lib.prune_checkpoints(self.folder, step, self.keep_last, remove_path)
        trainer.strategy.barrier("geodino_ckpt_renamed")
        self.last_saved_step, self.last_path = step, final
        return final


def remove_path(p: Path) -> None:
    """Remove a checkpoint or its temporary: a file, or a folder (a sharded checkpoint); gone already is fine."""
    import shutil

    if p.is_dir() and not p.is_symlink():  # a link (`last.ckpt`'s temporary) goes, never what it points at
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)
