"""Which step checkpoints a run keeps, and which it resumes from: `keep_last` values, a resume from an earlier
step of the same folder (the later checkpoints are another branch), and the old mid-step `hpc_ckpt_*.ckpt` files of
Lightning's SLURM handler. Each test fails on the code before its fix."""

from __future__ import annotations

import pytest

from tests.train.conftest import ln_k_plateau, write_config


@pytest.mark.parametrize("value", [-1, -3])
def test_a_negative_keep_last_is_refused_in_one_line_naming_the_key(tmp_path, tiny_data, capsys, value):
    """`checkpoint.keep_last=-1` (pretrain) and `train.keep_last=-1` (distill) kept every checkpoint without a word
    (the clean-up ran only for values > 0), so a typo could fill the disk. Refused now, before the run folder is
    made, naming the key and what 0 and N mean."""
    from geodino.cli import main
    from geodino.config import load_config
    from geodino.errors import ConfigError
    from geodino.train.distill import DistillConfig
    from tests.train.test_distill import _overrides

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    capsys.readouterr()
    assert main(["pretrain", "-c", str(cfg), f"checkpoint.keep_last={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"checkpoint.keep_last={value} must be 0 (keep every step checkpoint)" in err, err
    assert "N >= 1 (keep the newest N)" in err
    assert not (tmp_path / "run").exists()

    with pytest.raises(ConfigError, match=rf"^train\.keep_last={value} must be 0 \(keep every step checkpoint\)"):
        load_config(DistillConfig, None, _overrides(tmp_path, tmp_path / "d", f"train.keep_last={value}")).validate()


def test_keep_last_zero_and_positive_values_pass() -> None:
    """0 keeps every checkpoint (what it always meant) and stays valid, as do positive counts."""
    from geodino.train.config import CheckpointConfig

    for n in (0, 1, 5):
        CheckpointConfig(keep_last=n).validate()


def test_the_collapse_warning_is_printed_once() -> None:
    """The warning was both logged (the `geodino.train` logger's fallback handler printed it) and raised as a
    CollapseWarning: the same paragraph twice on the console. Now once, as the warning."""
    import subprocess
    import sys

    code = (
        "from geodino.train.monitors import CollapseMonitor\n"
        "m = CollapseMonitor(patience=1)\n"
        "m.update({'n_prototypes': 64, 'teacher_entropy': 0.0, 'teacher_usage_entropy': 0.0}, step=5)\n"
        "assert m.collapsed\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    said = done.stdout + done.stderr
    assert said.count("the teacher looks collapsed at step 5") == 1, said
    assert "CollapseWarning" in said and "(ssl.schedules.teacher_temp)" in said


@ln_k_plateau
def test_the_nan_message_is_one_line_of_loss_terms_and_the_monitors_go_to_the_log(tmp_path, tiny_data, monkeypatch):
    """A NaN loss listed every logged value, the dozen monitor statistics included: a paragraph in which the loss
    terms were hard to find. The message now names the step and the loss terms (plus at most a few values that are
    not finite); every value of the step is written to logs/metrics.csv, which the message names."""
    import csv
    import re

    from geodino.errors import TrainingError
    from geodino.train.pretrain import pretrain
    from geodino.train.ssl import SSLMetaArch
    from tests.train.test_reliability_audit import _cfg

    forward = SSLMetaArch.forward

    def nan_at_step_2(self, batch, iteration):
        loss, logs = forward(self, batch, iteration)
        return (loss * float("nan") if iteration == 2 else loss), logs

    monkeypatch.setattr(SSLMetaArch, "forward", nan_at_step_2)
    with pytest.raises(TrainingError) as caught:
        pretrain(_cfg(tmp_path, tiny_data, "run", "trainer.max_steps=4", "checkpoint.export_at_end=false"))
    message = str(caught.value)
    assert "\n" not in message
    inside = re.match(r"loss is nan at step 2 \((.*?)\); training stopped", message)
    assert inside, message
    listed = dict(re.findall(r"(\S+?)=(\S+?)(?:,|;|$)", inside.group(1)))
    assert {"dino_local_loss", "dino_global_loss", "koleo_loss", "ibot_loss"} <= set(listed), message
    assert not [k for k in listed if k.startswith("monitor/")], message  # the monitors are finite: not listed
    metrics = tmp_path / "run" / "logs" / "metrics.csv"
    assert f"every value of the step: {metrics}" in message, message
    with metrics.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step") == "2" and r.get("monitor/teacher_entropy")]
    assert rows and float(rows[0]["ibot_loss"]) == pytest.approx(float(listed["ibot_loss"]), rel=1e-3)


def test_the_nan_terms_keep_the_loss_terms_and_a_few_non_finite_values() -> None:
    """Beside the loss terms, only values that are not finite are named, at most three, then a count."""
    from geodino.train.module import nan_terms

    values = {"dino_loss": 2.0, "ibot_loss": float("nan"), "monitor/a": 1.0, "teacher_temp": 0.04}
    values.update({f"monitor/bad{i}": float("nan") for i in range(5)})
    said = nan_terms(values)
    assert said == (
        "dino_loss=2, ibot_loss=nan, monitor/bad0=nan, monitor/bad1=nan, monitor/bad2=nan, and 2 more values not finite"
    )


@ln_k_plateau
def test_a_resume_from_an_earlier_step_moves_the_later_checkpoints_aside(tmp_path, tiny_data, monkeypatch, capsys):
    """`checkpoint.resume=PATH` at step 2 of a folder holding steps 1-4: keep_last counted the new step 3 as older
    than the abandoned step 4 and deleted it as soon as it was written (keep_last=1), leaving `last.ckpt` pointing
    at nothing, and a later `resume=auto` would have jumped back to the abandoned step 4. Now the abandoned steps are
    moved into `checkpoints/abandoned-<timestamp>/` (one line says so) and `last.ckpt` always points at the newest
    checkpoint of the running branch."""
    import os

    import lightning as L

    from geodino.train import checkpointing as ck
    from geodino.train.pretrain import pretrain
    from tests.train.conftest import add_trainer_callback
    from tests.train.test_reliability_audit import _cfg

    base = ("trainer.max_steps=4", "checkpoint.every_n_steps=1", "checkpoint.export_at_end=false")
    pretrain(_cfg(tmp_path, tiny_data, "run", *base, "checkpoint.keep_last=0"))
    ckpts = tmp_path / "run" / "checkpoints"
    assert [p.name for p in ck.find_checkpoints(ckpts)] == [f"step_{i:08d}.ckpt" for i in (1, 2, 3, 4)]
    old_4 = (ckpts / "step_00000004.ckpt").stat()

    seen: list[tuple[int, str, bool]] = []

    class LastLink(L.Callback):  # after geodino's CheckpointCallback: where last.ckpt points once a step is saved
        def on_train_batch_end(self, trainer, *args):
            link = ckpts / "last.ckpt"
            seen.append((trainer.global_step, os.readlink(link), link.exists()))

    add_trainer_callback(monkeypatch, LastLink())
    capsys.readouterr()
    resume = ckpts / "step_00000002.ckpt"
    pretrain(_cfg(tmp_path, tiny_data, "run", *base, "checkpoint.keep_last=1", f"checkpoint.resume={resume}"))
    err = capsys.readouterr().err
    assert seen == [(3, "step_00000003.ckpt", True), (4, "step_00000004.ckpt", True)], seen
    asides = [p for p in ckpts.iterdir() if p.name.startswith("abandoned-")]
    assert len(asides) == 1 and sorted(os.listdir(asides[0])) == ["step_00000003.ckpt", "step_00000004.ckpt"]
    assert (asides[0] / "step_00000004.ckpt").stat().st_ino == old_4.st_ino  # moved, not copied or rewritten
    assert sorted(p.name for p in ckpts.glob("step_*.ckpt")) == ["step_00000004.ckpt"]  # keep_last=1
    assert os.readlink(ckpts / "last.ckpt") == "step_00000004.ckpt"
    assert ck.load_file(ckpts / "last.ckpt")["global_step"] == 4
    said = [line for line in err.splitlines() if "abandons" in line]
    assert said == [
        f"geodino: resuming from step 2, which abandons the 2 checkpoints of later steps in {ckpts} "
        f"(step_00000003.ckpt, step_00000004.ckpt): moved to {asides[0]}/ so that the run's history is linear; "
        "delete that folder when you no longer need them"
    ], err


def test_abandoning_points_last_at_the_newest_left_and_keeps_the_resume_file(tmp_path) -> None:
    """The helper both runs use: later steps (and a same-step file that is not the one resumed from) move aside,
    the resume file and earlier ones stay, `last.ckpt` follows; nothing later: nothing moves."""
    import os

    from geodino.train import checkpointing as ck

    for i in (1, 2, 5, 7):
        (tmp_path / f"step_{i:08d}.ckpt").write_bytes(b"x" * i)
    ck.point_last(tmp_path / "last.ckpt", "step_00000007.ckpt")
    assert ck.abandon_later_checkpoints(tmp_path, 7, tmp_path / "last.ckpt") == ([], None)
    moved, aside = ck.abandon_later_checkpoints(tmp_path, 2, tmp_path / "step_00000002.ckpt")
    assert [p.name for p in moved] == ["step_00000005.ckpt", "step_00000007.ckpt"] and aside is not None
    assert sorted(os.listdir(aside)) == ["step_00000005.ckpt", "step_00000007.ckpt"]
    assert os.readlink(tmp_path / "last.ckpt") == "step_00000002.ckpt"
    other = tmp_path / "elsewhere.ckpt"  # a resume from another folder at step 1: this folder's step 1 is not it
    other.write_bytes(b"y")
    moved, _ = ck.abandon_later_checkpoints(tmp_path, 1, other)
    assert [p.name for p in moved] == ["step_00000001.ckpt", "step_00000002.ckpt"]
    assert not (tmp_path / "last.ckpt").is_symlink()  # no checkpoint left here: no dangling link either


def test_distill_moves_aside_the_checkpoints_past_the_common_resume_step(tmp_path, monkeypatch, capsys) -> None:
    """Distillation resumes every student from the newest step all of them have (a MIN over ranks): a student whose
    folder also held a later checkpoint (another student's save was cut short) kept it, and keep_last then deleted
    each new lower-step checkpoint as it was written. The later one is moved aside now and the new one stays."""
    import os
    from types import SimpleNamespace

    import torch
    from torch import nn

    from geodino.train.distill import DistillConfig, run_setup
    from geodino.train.distill.export import save_checkpoint
    from geodino.train.resume_point import resume_point

    class Student(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Linear(2, 2)
            self.backbone.config = {"arch": "stand-in"}

    arch = SimpleNamespace(students={"s": Student()}, students_ema={"s": Student()})
    opt = torch.optim.SGD(arch.students["s"].parameters(), lr=0.1)
    cfg = DistillConfig()
    ckpts = tmp_path / "s" / "checkpoints"
    for step in (2, 4):
        save_checkpoint(ckpts, arch, opt, step, cfg, keep_last=0)
    loaded: list[str] = []
    monkeypatch.setattr(run_setup, "load_checkpoint", lambda path, *a: loaded.append(path.name) or 2)
    capsys.readouterr()
    found = resume_point("auto", ckpts)[0]
    start = run_setup._resume(cfg, arch, opt, ckpts, (found, 2))  # the other student's newest: step 2; this writes here
    assert start == 2 and loaded == ["step_00000002.ckpt"]
    asides = [p for p in ckpts.iterdir() if p.name.startswith("abandoned-")]
    assert len(asides) == 1 and os.listdir(asides[0]) == ["step_00000004.ckpt"]
    assert "geodino: every student resumes from step 2, which abandons the 1 checkpoint of later steps" in (
        capsys.readouterr().err
    )
    save_checkpoint(ckpts, arch, opt, 3, cfg, keep_last=1)  # the resumed run's next checkpoint
    assert sorted(p.name for p in ckpts.glob("step_*.ckpt")) == ["step_00000003.ckpt"]


def test_keep_last_never_deletes_the_checkpoint_just_written(tmp_path) -> None:
    """Pruning counts only the running branch (steps up to the one just written): a later file that is somehow
    there is left alone and never makes the new checkpoint look old."""
    from geodino.train import checkpointing as ck

    for i in (1, 2, 3, 9):
        (tmp_path / f"step_{i:08d}.ckpt").write_bytes(b"x")
    removed = ck.prune_checkpoints(tmp_path, 3, 1, lambda p: p.unlink())
    assert [p.name for p in removed] == ["step_00000001.ckpt", "step_00000002.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000003.ckpt", "step_00000009.ckpt"]


def test_an_old_hpc_checkpoint_is_never_resumed_from(tmp_path, tiny_data, monkeypatch, capsys):
    """Earlier geodino versions let Lightning's SLURM handler write `hpc_ckpt_N.ckpt` into the run folder mid-step;
    under SLURM, Lightning resumes from the newest one whenever `fit` gets no checkpoint, so a folder without step
    checkpoints silently continued from that mid-step state. Now the file is moved aside with one line naming it
    and the run starts from step 0. The file here is generated: a real step-1 checkpoint renamed as Lightning named
    its own (the strongest case: the old code loaded it without a word)."""
    import lightning as L

    from geodino.train.pretrain import pretrain
    from tests.train.conftest import add_trainer_callback
    from tests.train.test_reliability_audit import SLURM_ENV, _cfg

    base = ("trainer.max_steps=2", "checkpoint.export_at_end=false")
    pretrain(_cfg(tmp_path, tiny_data, "run", *base))
    run, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    hpc = run / "hpc_ckpt_1.ckpt"
    (ckpts / "step_00000001.ckpt").rename(hpc)
    for p in ckpts.iterdir():
        p.unlink()
    inode = hpc.stat().st_ino

    started: list[int] = []

    class FirstStep(L.Callback):
        def on_train_start(self, trainer, *args):
            started.append(trainer.global_step)

    for k, v in SLURM_ENV.items():
        monkeypatch.setenv(k, v)
    add_trainer_callback(monkeypatch, FirstStep())
    capsys.readouterr()
    pretrain(_cfg(tmp_path, tiny_data, "run", *base))
    err = capsys.readouterr().err
    assert started == [0], started  # the old code started at step 1, from the hpc file
    assert not list(run.glob("*hpc_ckpt_*"))
    kept = list(ckpts.glob("ignored-*/hpc_ckpt_1.ckpt"))
    assert len(kept) == 1 and kept[0].stat().st_ino == inode  # moved, not lost
    said = [line for line in err.splitlines() if "hpc_ckpt" in line]
    assert said == [
        f"geodino: ignoring hpc_ckpt_1.ckpt in {run} (written mid-step by Lightning's SLURM handler in an earlier "
        f"geodino version, not safe to resume from): moved to {kept[0].parent}/; this run resumes only from step "
        "checkpoints"
    ], err


KILLED_POINT_LAST = """
import os, signal, sys
from pathlib import Path
from geodino.train import checkpoint_folder
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed between making the link and the rename
checkpoint_folder.point_last(Path(sys.argv[1]), "step_00000001.ckpt")
"""


def test_a_killed_point_last_leaves_a_temporary_that_is_swept(tmp_path, capsys) -> None:
    """`last.ckpt` is made under `geodino.io.temp_name` (one naming rule, `.last.tmp-TAG-PID.ckpt`, no longer
    `.last.ckpt.tmp-PID`): the link a killed run left matches the run folder's `.*.tmp-*` clean-up on resume, and
    the next `point_last` sweeps it."""
    import os
    import subprocess
    import sys

    from geodino import io
    from geodino.train import checkpointing as ck

    (tmp_path / "step_00000001.ckpt").write_bytes(b"x")
    link = tmp_path / "last.ckpt"
    run = subprocess.Popen([sys.executable, "-c", KILLED_POINT_LAST, str(link)])
    assert run.wait() == -9
    (left,) = tmp_path.glob(".*.tmp-*")  # what pretrain's and distillation's resume clean-up remove
    assert left.is_symlink() and left.name == io.temp_name(link).name.replace(f"-{os.getpid()}.", f"-{run.pid}.")
    capsys.readouterr()
    ck.point_last(link, "step_00000001.ckpt")
    assert not left.is_symlink() and os.readlink(link) == "step_00000001.ckpt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "step_00000001.ckpt"]
    assert f"removed 1 temporary of a killed run: {left.name}" in capsys.readouterr().err


def test_a_point_last_whose_rename_fails_leaves_no_temporary_link(tmp_path, monkeypatch) -> None:
    """A rename refused (a permission, a full disk) raises its own error and takes the temporary link with it; the
    earlier `last.ckpt` stays as it was."""
    import os

    from geodino.train import checkpoint_folder

    for i in (1, 2):
        (tmp_path / f"step_{i:08d}.ckpt").write_bytes(b"x" * i)
    link = tmp_path / "last.ckpt"
    checkpoint_folder.point_last(link, "step_00000001.ckpt")

    def refused(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(checkpoint_folder.os, "replace", refused)
    with pytest.raises(PermissionError, match="Permission denied"):
        checkpoint_folder.point_last(link, "step_00000002.ckpt")
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*.tmp-*"))
    assert os.readlink(link) == "step_00000001.ckpt"
