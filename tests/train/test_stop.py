"""Ctrl-C and SIGTERM stop a training run after the step in progress, with a checkpoint of that step: the same
command resumes there and ends as an uninterrupted run does. Before, pretrain and distill lost every step since the
last periodic checkpoint, and distill ended silently with exit code 143."""

from __future__ import annotations

import csv
import signal

import pytest
import torch

from geodino.train.stop import StopRequest
from tests.train.conftest import ln_k_plateau, signal_after_step


def test_the_first_signal_asks_the_second_stops_and_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopRequest() as stop:
        assert not stop.agreed()
        signal.raise_signal(signal.SIGTERM)  # the process keeps running: a request, not a kill
        assert stop.signal == "SIGTERM" and stop.agreed()
        assert stop.agreed(lambda wanted: wanted) and not StopRequest().agreed(lambda wanted: False)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the second one stops at once
    assert {s: signal.getsignal(s) for s in before} == before


def test_data_loader_workers_leave_both_signals_to_the_main_process():
    """A terminal's Ctrl-C reaches the workers too; one that died of it broke the batch the last step needed."""
    from torch.utils.data import DataLoader, Dataset

    from geodino.data.loaders import _worker_init

    class Handlers(Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> list[bool]:
            return [signal.getsignal(s) is signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)]

    (seen,) = DataLoader(Handlers(), batch_size=None, num_workers=1, worker_init_fn=_worker_init)
    assert seen == [True, True]
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # the main process keeps its own


@ln_k_plateau
def test_pretrain_stopped_by_sigterm_saves_its_step_and_resumes_as_if_uninterrupted(tmp_path, tiny_data, capsys):
    import lightning as L

    from geodino.cli import main
    from geodino.train import checkpointing as ck
    from tests.train.conftest import add_trainer_callback, write_config

    over = ["trainer.max_steps=5", "checkpoint.every_n_steps=100", "checkpoint.export_at_end=false"]
    assert main(["pretrain", "-c", str(write_config(tmp_path / "a.yaml", tmp_path / "a", tiny_data)), *over]) == 0

    class Term(L.Callback):  # a scheduler's SIGTERM while step 2 ends
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2:
                signal.raise_signal(signal.SIGTERM)

    with pytest.MonkeyPatch.context() as mp:
        add_trainer_callback(mp, Term())
        argv = ["pretrain", "-c", str(write_config(tmp_path / "b.yaml", tmp_path / "b", tiny_data)), *over]
        capsys.readouterr()
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert "geodino: SIGTERM received: stopping after this step and saving a checkpoint of it" in err
    assert "stopped after step 3 of 5 (SIGTERM); saved " in err and err.rstrip().endswith("geodino: interrupted")
    assert ck.load_file(tmp_path / "b" / "checkpoints" / "last.ckpt")["global_step"] == 3  # not lost
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is (
        signal.default_int_handler
    )
    assert main(argv) == 0  # the same command resumes at step 3
    a, b = (ck.load_file(tmp_path / d / "checkpoints" / "last.ckpt") for d in ("a", "b"))
    assert a["global_step"] == b["global_step"] == 5
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    rows = list(csv.DictReader(open(tmp_path / "b" / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]


def _noise_images(folder):
    """Eight 40 px RGB noise PNGs in `folder`: a distillation run's smallest image folder."""
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


def test_distill_stopped_by_ctrl_c_saves_its_step_and_resumes_as_if_uninterrupted(tmp_path, capsys, monkeypatch):
    from geodino.cli import main
    from geodino.train.distill import loop
    from tests.train.test_distill import _cfg

    imgs = _noise_images(tmp_path / "imgs")
    over = ["train.max_steps=3", "train.checkpoint_every_n_steps=100"]

    def argv(out: str) -> list[str]:
        cfg = _cfg(imgs, tmp_path / out, *over)
        from geodino.config import save_config

        save_config(cfg, tmp_path / f"{out}.yaml")
        return ["distill", "-c", str(tmp_path / f"{out}.yaml")]

    assert main(argv("a")) == 0
    b = argv("b")
    monkeypatch.setattr(loop, "train_step", signal_after_step(loop.train_step, 0, signal.SIGINT))
    capsys.readouterr()
    assert main(b) == 130
    err = capsys.readouterr().err
    assert "stopped after step 1 of 3 (SIGINT); saved " in err and err.rstrip().endswith("geodino: interrupted")
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step_*")) == ["step_00000001.ckpt"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    assert main(b) == 0
    one, two = (torch.load(tmp_path / d / "checkpoints" / "step_00000003.ckpt", weights_only=True) for d in "ab")
    for part in ("students", "students_ema"):
        for name in one[part]:
            for k, v in one[part][name].items():
                assert torch.equal(two[part][name][k], v), (part, name, k)
    rows = list(csv.DictReader((tmp_path / "b" / "log.csv").open()))
    assert [r["step"] for r in rows] == ["0", "1", "2"]  # integers (were 0.0, 1.0, ...) and one row per step


@ln_k_plateau
def test_a_signal_during_the_last_step_finishes_the_run_instead_of_skipping_its_export(tmp_path, tiny_data, capsys):
    """Nothing is left to stop after the last step: the run ends as a complete one (export, exit 0), saying so;
    it used to exit 130 without its export and ask for a rerun that only exported."""
    import lightning as L

    from geodino.cli import main
    from geodino.train import checkpointing as ck
    from tests.train.conftest import add_trainer_callback, write_config

    class Term(L.Callback):  # SIGTERM while the last step (the third) runs
        def on_train_batch_start(self, trainer, *args):
            if trainer.global_step == 2:
                signal.raise_signal(signal.SIGTERM)

    with pytest.MonkeyPatch.context() as mp:
        add_trainer_callback(mp, Term())
        argv = ["pretrain", "-c", str(write_config(tmp_path / "a.yaml", tmp_path / "a", tiny_data))]
        capsys.readouterr()
        assert main([*argv, "trainer.max_steps=3", "checkpoint.every_n_steps=100"]) == 0
    err = capsys.readouterr().err
    assert "geodino: SIGTERM came during the last step (3 of 3): the run is complete" in err
    assert "interrupted" not in err and "stopped after" not in err
    assert ck.load_file(tmp_path / "a" / "checkpoints" / "last.ckpt")["global_step"] == 3
    assert (tmp_path / "a" / "export" / "teacher.pth").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_distill_signalled_during_its_last_step_exports(tmp_path, capsys, monkeypatch):
    from geodino.cli import main
    from geodino.config import save_config
    from geodino.train.distill import loop
    from tests.train.test_distill import _cfg

    imgs = _noise_images(tmp_path / "imgs")
    save_config(
        _cfg(imgs, tmp_path / "d", "train.max_steps=2", "train.checkpoint_every_n_steps=100"), tmp_path / "d.yaml"
    )
    monkeypatch.setattr(loop, "train_step", signal_after_step(loop.train_step, 1, signal.SIGINT))  # the last of 2 steps
    capsys.readouterr()
    assert main(["distill", "-c", str(tmp_path / "d.yaml")]) == 0
    err = capsys.readouterr().err
    assert "geodino: SIGINT came during the last step (2 of 2): the run is complete" in err and "interrupted" not in err
    assert sorted(p.name for p in (tmp_path / "d" / "checkpoints").glob("step_*")) == ["step_00000002.ckpt"]
    assert list((tmp_path / "d").rglob("*.pth"))  # the students' exports
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
