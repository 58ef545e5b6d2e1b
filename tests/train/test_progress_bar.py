"""The pretraining progress bar counts `step/max_steps`, in a resumed run too (it showed `43/?` after a resume:
Lightning skips `on_train_epoch_start` when it restarts inside the run's one epoch, where its bar gets a total)."""

from __future__ import annotations

import lightning as L


class BarSpy(L.Callback):
    """Records the train bar's (n, total, text) when training starts and after every step, and the callback's
    `total_train_batches` after the last."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int | None, str]] = []
        self.total_train_batches: float | None = None

    def _record(self, trainer: L.Trainer, when: str) -> None:
        bar = trainer.progress_bar_callback.train_progress_bar
        self.seen.append((when, int(bar.n), bar.total, str(bar)))
        self.total_train_batches = trainer.progress_bar_callback.total_train_batches

    def on_train_start(self, trainer: L.Trainer, *args: object) -> None:
        self._record(trainer, "start")

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self._record(trainer, f"step {trainer.global_step}")


def test_a_resumed_pretraining_run_shows_step_of_max_steps(tmp_path, tiny_data, monkeypatch):
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig, pretrain
    from tests.train.conftest import add_trainer_callback, write_config

    cfg = load_config(
        PretrainConfig,
        write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data),
        ["trainer.max_steps=5", "trainer.progress_bar=true", "checkpoint.export_at_end=false", "ssl.monitor.every=0"],
    )

    class StopAfter2(L.Callback):  # a run killed after step 2 (its step-2 checkpoint survives)
        def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
            if trainer.global_step >= 2:
                trainer.should_stop = True

    first, resumed = BarSpy(), BarSpy()
    add_trainer_callback(monkeypatch, first)
    add_trainer_callback(monkeypatch, StopAfter2())
    pretrain(cfg)
    assert [(w, n, t) for w, n, t, _ in first.seen[1:]] == [("step 1", 1, 5), ("step 2", 2, 5)]

    monkeypatch.undo()
    add_trainer_callback(monkeypatch, resumed)
    pretrain(cfg)  # the same command resumes at step 2
    assert [(w, n, t) for w, n, t, _ in resumed.seen] == [
        ("start", 2, 5),  # the restored step of the run's 5, before the first resumed step
        ("step 3", 3, 5),
        ("step 4", 4, 5),
        ("step 5", 5, 5),
    ]
    assert "2/5" in resumed.seen[0][3] and "5/5" in resumed.seen[-1][3] and "?" not in resumed.seen[-1][3]
    assert resumed.total_train_batches == 5  # the run's length, not the steps left (0 at the end)
