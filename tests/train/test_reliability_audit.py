"""Reliability of training runs under kills, preemption, bad resumes and diverging losses (an adversarial audit):
each test reproduces a defect that was found and fails on the code before its fix."""

from __future__ import annotations

from pathlib import Path

from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig
from tests.train.conftest import ln_k_plateau, write_config


def _cfg(tmp_path: Path, data: Path, out: str = "run", *overrides: str) -> PretrainConfig:
    return load_config(PretrainConfig, write_config(tmp_path / f"{out}.yaml", tmp_path / out, data), list(overrides))


def test_a_sharded_checkpoint_temporary_left_by_a_kill_is_swept(tmp_path, tiny_data):
    """A sharded (fsdp2) checkpoint is a folder: the start of the next run swept temporaries with `unlink` and
    failed with a bare IsADirectoryError instead of resuming."""
    from geodino.run_lock import release_run_folder
    from geodino.train.pretrain_folder import prepare_output
    from geodino.train.run_start import Start

    cfg = _cfg(tmp_path, tiny_data)
    ckpts = tmp_path / "run" / "checkpoints"
    half = ckpts / ".step_00000004.tmp-4242.ckpt"  # a kill during a sharded save
    half.mkdir(parents=True)
    (half / "__0_0.distcp").write_bytes(b"half a shard")
    (ckpts / "step_00000002.ckpt").mkdir()  # a complete sharded checkpoint, and last.ckpt's temporary link to it
    (ckpts / ".last.ckpt.tmp-4242").symlink_to("step_00000002.ckpt")
    try:
        start = Start()
        _, resume = prepare_output(cfg, start)
        start.settle()  # the housekeeping waits until the start is accepted
    finally:
        release_run_folder(tmp_path / "run")
    assert not half.exists() and not (ckpts / ".last.ckpt.tmp-4242").is_symlink()
    assert resume == ckpts / "step_00000002.ckpt" and resume.is_dir()  # what the link pointed at stays


@ln_k_plateau
def test_the_nan_guards_advice_is_a_run_that_starts(tmp_path, tiny_data, monkeypatch):
    """A NaN loss said "lower ssl.schedules.lr.peak or ssl.optim.clip_grad and rerun the same command to resume", but
    a resume refuses a changed recipe (and, being exact, would reach the same NaN): the advice could not be
    followed. The message now names a new run from the last good checkpoint, which is checked here to start."""
    import re

    import pytest

    from geodino.errors import CheckpointError, TrainingError
    from geodino.train.pretrain import pretrain
    from geodino.train.ssl import SSLMetaArch

    forward = SSLMetaArch.forward

    def spike_at_step_2(self, batch, iteration):  # a loss spike the last good checkpoint (step 2) does not hold
        loss, logs = forward(self, batch, iteration)
        return (loss * float("nan") if iteration == 2 else loss), logs

    base = ("trainer.max_steps=4", "checkpoint.every_n_steps=2", "checkpoint.export_at_end=false")
    with monkeypatch.context() as m, pytest.raises(TrainingError, match=r"loss is nan at step 2 ") as caught:
        m.setattr(SSLMetaArch, "forward", spike_at_step_2)
        pretrain(_cfg(tmp_path, tiny_data, "run", *base))
    message = str(caught.value)
    last = tmp_path / "run" / "checkpoints" / "step_00000002.ckpt"
    assert f"the last good checkpoint is {last}" in message
    calmer = ["ssl.schedules.lr.peak=5e-4", "ssl.optim.clip_grad=1.0"]
    with pytest.raises(CheckpointError, match=r"was written with ssl\.optim\.clip_grad=3\.0"):
        pretrain(_cfg(tmp_path, tiny_data, "run", *base, *calmer))  # why "rerun the same command" cannot follow it
    advice = re.findall(r"\b(init_from|init_student_from)=(\S+?)(?=[,;\s]|$)", message)
    assert dict(advice) == {"init_from": str(last), "init_student_from": "student"}, message
    out = pretrain(_cfg(tmp_path, tiny_data, "new", *base, *calmer, *(f"{k}={v}" for k, v in advice)))
    assert (out / "checkpoints" / "step_00000004.ckpt").is_file()


def test_the_distill_nan_guard_does_not_advise_a_resume_it_would_refuse(tmp_path, monkeypatch):
    """Distillation's NaN guard said "lower schedules.lr.end or optim.clip_grad and resume from the last checkpoint",
    which the resume check refuses (both keys are part of the recipe a resume keeps)."""
    import pytest

    from geodino.errors import CheckpointError, TrainingError
    from geodino.train.distill import distill
    from geodino.train.distill_arch import DistillMetaArch
    from tests.train.test_distill import _cfg as distill_cfg
    from tests.train.test_stop import _noise_images

    images = _noise_images(tmp_path / "imgs")
    forward_backward, calls = DistillMetaArch.forward_backward, []

    def spike_on_the_second_step(self, *args, **kwargs):
        loss, metrics = forward_backward(self, *args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 2 else loss), metrics

    with monkeypatch.context() as m, pytest.raises(TrainingError, match=r"loss is nan at step 1 ") as caught:
        m.setattr(DistillMetaArch, "forward_backward", spike_on_the_second_step)
        distill(distill_cfg(images, tmp_path / "run", "train.max_steps=3"))
    assert "resume from" not in str(caught.value) and "new output_dir" in str(caught.value)
    lower = "schedules.lr={start: 0.0, peak: 0.0, end: 1.0e-4, warmup_iters: 0, cosine_iters: 1}"
    with pytest.raises(CheckpointError, match=r"was written with schedules\.lr\.end=0\.001"):
        distill(distill_cfg(images, tmp_path / "run", "train.max_steps=3", lower))  # the old advice, refused


def test_distill_resume_never_refuses_a_folder_that_holds_checkpoints(tmp_path):
    """`train.resume=never` in a used folder started at step 0 among the earlier run's checkpoints: keep_last kept the
    highest steps, so the new run deleted its own checkpoints as it wrote them (a Ctrl-C said "saved step 1" of a
    file already gone), wiped log.csv, and the next `auto` resumed the earlier run. Refused now, as in pretraining,
    before anything of the folder changes."""
    import pytest

    from geodino.errors import InputError
    from geodino.train.distill import distill
    from tests.train.test_distill import _cfg as distill_cfg
    from tests.train.test_stop import _noise_images

    images = _noise_images(tmp_path / "imgs")
    out = tmp_path / "run"
    distill(distill_cfg(images, out, "train.max_steps=2"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match=r"output_dir .*run already holds checkpoints \(checkpoints/step_00000002\.ckpt"
                       r"\); resume with train.resume=auto or choose another output_dir"):  # fmt: skip
        distill(distill_cfg(images, out, "train.max_steps=3", "train.resume=never", "train.keep_last=1"))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    distill(distill_cfg(images, tmp_path / "fresh", "train.max_steps=1", "train.resume=never"))  # a new folder runs


SLURM_ENV = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "42", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NNODES": "1"}  # fmt: skip


@ln_k_plateau
def test_slurms_sigusr1_saves_the_step_and_requeues_instead_of_a_mid_step_hpc_checkpoint(tmp_path, tiny_data, capsys):
    """`sbatch --signal=SIGUSR1@120` went to Lightning's handler: it wrote `hpc_ckpt_1.ckpt` into the run folder from
    inside the signal handler (mid-step, not atomically, never pruned; a requeued job without a step checkpoint
    resumed from it) and then kept training. It is now a stop request: the step finishes and is saved as a step
    checkpoint, the job is requeued, and the requeued job (the same command) resumes from it."""
    import signal
    import subprocess

    import lightning as L
    import pytest

    from geodino.cli import main
    from geodino.train import checkpointing as ck
    from tests.train.conftest import add_trainer_callback

    class Usr1(L.Callback):  # SLURM's warning signal while step 2 ends
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2:
                signal.raise_signal(signal.SIGUSR1)

    requeued: list[list[str]] = []
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    argv = ["pretrain", "-c", str(cfg), "trainer.max_steps=4", "checkpoint.every_n_steps=100",
            "checkpoint.export_at_end=false"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for k, v in SLURM_ENV.items():
            mp.setenv(k, v)
        mp.setattr(subprocess, "call", lambda cmd, **kw: requeued.append(cmd) or 0)
        add_trainer_callback(mp, Usr1())
        capsys.readouterr()
        assert main(argv) == 130
        err = capsys.readouterr().err
        assert "stopped after step 3 of 4 (SIGUSR1); saved " in err, err
        assert "geodino: requeued SLURM job 42; it resumes from the checkpoint just saved" in err
        assert requeued == [["scontrol", "requeue", "42"]]
        assert not list((tmp_path / "run").rglob("hpc_ckpt*"))
        assert ck.load_file(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 3
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    with pytest.MonkeyPatch.context() as mp:  # the requeued job
        for k, v in SLURM_ENV.items():
            mp.setenv(k, v)
        assert main(argv) == 0
    assert ck.load_file(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 4


def _fail_at_step_2(real, error: OSError):
    """`real` (a save function taking the object and the path), except that it raises `error` when it writes the
    checkpoint of step 2 (a disk that fills up during the run)."""

    def full_at_step_2(obj, path, *args, **kwargs):
        if "step_00000002" in str(path):
            raise error
        return real(obj, path, *args, **kwargs)

    return full_at_step_2


@ln_k_plateau
def test_a_full_disk_during_a_checkpoint_is_one_line_naming_the_file_and_the_last_good_one(tmp_path, tiny_data, capsys):
    """ENOSPC while a checkpoint was written ended pretraining and distillation with a bare OSError traceback (exit
    code 1). Now one line (exit code 1, a storage error as in every command): the file, the reason, the newest
    complete checkpoint and what to do; no temporary is left and the earlier checkpoint is untouched."""
    import errno

    import lightning.fabric.plugins.io.torch_io as torch_io
    import pytest

    import geodino.models.checkpoints.reproducible as reproducible
    from geodino.cli import main
    from geodino.config import save_config
    from tests.train.test_distill import _cfg as distill_cfg
    from tests.train.test_stop import _noise_images

    full = OSError(errno.ENOSPC, "No space left on device")
    write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    dcfg = distill_cfg(_noise_images(tmp_path / "imgs"), tmp_path / "drun", "train.max_steps=3")
    save_config(dcfg, tmp_path / "d.yaml")
    for command, target, run in (("pretrain", (torch_io, "_atomic_save"), "run"),
                                 ("distill", (reproducible, "save_torch"), "drun")):  # fmt: skip
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(*target, _fail_at_step_2(getattr(*target), full))
            capsys.readouterr()
            assert main([command, "-c", str(tmp_path / ("c.yaml" if command == "pretrain" else "d.yaml"))]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("geodino: error")]
        ckpts = tmp_path / run / "checkpoints"
        assert (
            len(err) == 1
            and (
                f"cannot write checkpoint {ckpts / 'step_00000002.ckpt'} (No space left on device); training stopped "
                f"after step 2 and the newest complete checkpoint is {ckpts / 'step_00000001.ckpt'}; free space in"
            )
            in err[0]
        ), (command, err)
        assert sorted(p.name for p in ckpts.iterdir() if p.name != "last.ckpt") == ["step_00000001.ckpt"]
