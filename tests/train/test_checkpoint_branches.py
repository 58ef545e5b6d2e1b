"""Which step checkpoints a run keeps, and which it resumes from: `keep_last` values, a resume from an earlier
step of the same folder (the later checkpoints are another branch), and the old mid-step `hpc_ckpt_*.ckpt` files of
Lightning's SLURM handler. Each test fails on the code before its fix."""

from __future__ import annotations

import pytest

from tests.train.conftest import write_config


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
