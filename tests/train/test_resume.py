"""A run stopped after k steps and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import torch

from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer
from tests.train.conftest import ln_k_plateau
from tests.train.standin import StandInArch, loader_factory, schedules


def run(out, max_steps, ckpt_path=None):
    torch.manual_seed(0)
    arch = StandInArch()  # same init every time (seeded)
    module = SSLModule(
        arch,
        schedules,
        loader_factory=loader_factory(seed=3),
        seed=3,
        clip_grad=0.5,
        checkpoint_dir=out / "checkpoints",
    )
    tcfg = TrainerConfig(max_steps=max_steps, accelerator="cpu", precision="32-true", loggers=[], progress_bar=False)
    trainer, _ = build_trainer(tcfg, CheckpointConfig(every_n_steps=3, keep_last=0), out)
    trainer.fit(module, ckpt_path=ckpt_path)
    return module, trainer


def test_resume_equals_uninterrupted(tmp_path):
    full, _ = run(tmp_path / "a", 6)
    # "killed" after 3 steps: only the step-3 checkpoint survives; a new process resumes from it
    run(tmp_path / "b", 3)
    ck = tmp_path / "b" / "checkpoints" / "step_00000003.ckpt"
    resumed, trainer = run(tmp_path / "b", 6, ckpt_path=str(ck))
    assert trainer.global_step == 6
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the optimizer state matches too (Adam moments and step counts)
    oa, ob = full.optimizers().optimizer.state_dict(), resumed.optimizers().optimizer.state_dict()
    for i, st in oa["state"].items():
        for name, v in st.items():
            assert torch.equal(v, ob["state"][i][name]), (i, name)


@ln_k_plateau
def test_pretrain_killed_and_resumed_equals_uninterrupted(tmp_path, tiny_data, monkeypatch, capsys):
    """The real recipe (drop path, RoPE rescaling, masks, crops) through `pretrain`, stopped after 2 of 5 steps
    and restarted with the same command (checkpoint.resume=auto), ends bit-identical to an uninterrupted run.
    Stopped before half the run: Lightning restores its in-epoch batch count, so a loader that reported only the
    steps left as its length ended the epoch early and was read again from the checkpoint's step."""
    import lightning as L

    from geodino.config import load_config
    from geodino.train import checkpointing as ck
    from geodino.train.pretrain import PretrainConfig, pretrain
    from tests.train.conftest import add_trainer_callback, write_config

    def cfg(out, *extra):
        return load_config(
            PretrainConfig,
            write_config(tmp_path / f"{out}.yaml", tmp_path / out, tiny_data),
            ["trainer.max_steps=5", "checkpoint.export_at_end=false", *extra],
        )

    full = pretrain(cfg("a"))

    class KillAfter(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= 2:
                trainer.should_stop = True

    add_trainer_callback(monkeypatch, KillAfter())
    pretrain(cfg("b"))
    assert ck.load_file(tmp_path / "b" / "checkpoints" / "last.ckpt")["global_step"] == 2
    monkeypatch.undo()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = pretrain(cfg("b"))  # the same command again: resumes from step 2
    # and says so on the console (it was an INFO log line, which the CLI does not show)
    newest = tmp_path / "b" / "checkpoints" / "step_00000002.ckpt"
    assert f"geodino: resuming from {newest} at step 2 of 5\n" in capsys.readouterr().err
    assert not [w for w in caught if "not resumable" in str(w.message)]  # the resume is exact: no false alarm

    a = ck.load_file(full / "checkpoints" / "last.ckpt")
    b = ck.load_file(resumed / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 5
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    # the first launch's metrics are kept and the resumed launch continues the same file (issue 13)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "b" / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]
    assert not list((tmp_path / "b" / "logs").glob("resumed_*"))
    ref = list(csv.DictReader(open(tmp_path / "a" / "logs" / "metrics.csv")))
    assert rows[0].keys() == ref[0].keys() and [r["loss"] for r in rows] == [r["loss"] for r in ref]
    sa, sb = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    # the same folder with another batch size, seed or length is not a resume of this run: one line, and the run's
    # config.yaml still says what ran (logging may change freely)
    import pytest

    from geodino.errors import CheckpointError

    saved_cfg = (tmp_path / "b" / "config.yaml").read_text()
    for change, key in (("batch_size=3", "batch_size"), ("seed=7", "seed"), ("trainer.max_steps=9", "max_steps")):
        with pytest.raises(CheckpointError, match=rf"was written with .*{key}=.* but this run has .*{key}="):
            pretrain(cfg("b", change))
    assert (tmp_path / "b" / "config.yaml").read_text() == saved_cfg
    pretrain(cfg("b", "trainer.log_every_n_steps=2"))
