"""Experiment trackers (`trainer.loggers`, `train.loggers`): names, options, the missing-package error, and each
tracker writing offline (W&B offline mode, MLflow in a file: store) when its package is installed."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from geodino.cli import main
from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train import loggers as lg
from geodino.train.config import TrainerConfig
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import write_config

HAS_WANDB = importlib.util.find_spec("wandb") is not None
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


def test_unknown_logger_names_the_key_and_close_match() -> None:
    msg = r"trainer.loggers has 'wandbb'; use any of csv, tensorboard, wandb, mlflow; did you mean 'wandb'"
    with pytest.raises(ConfigError, match=msg):
        TrainerConfig(loggers=["csv", "wandbb"]).validate()


def test_options_for_an_unlisted_logger_fail() -> None:
    with pytest.raises(ConfigError, match=r"trainer.logger_options.wandb is set but trainer.loggers does not list"):
        TrainerConfig(loggers=["csv"], logger_options={"wandb": {"project": "x"}}).validate()


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_missing_package_is_one_line_naming_the_pip_install(monkeypatch, name) -> None:
    monkeypatch.setattr(lg, "_installed", lambda package: False)
    with pytest.raises(ConfigError) as exc:
        TrainerConfig(loggers=["csv", name]).validate()
    msg = str(exc.value)
    assert msg == (
        f"trainer.loggers has {name!r} but the {name} package is not installed; pip install 'geodino[tracking]' "
        f"(or pip install {name}), or drop {name} from trainer.loggers"
    )


def test_cli_rejects_a_missing_tracker_before_any_work(monkeypatch, tmp_path, tiny_data, capsys) -> None:
    monkeypatch.setattr(lg, "_installed", lambda package: False)
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    code = main(["pretrain", "-c", str(cfg), "trainer.loggers=[csv,wandb]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "pip install 'geodino[tracking]'" in err
    assert not (tmp_path / "run").exists()
    code = main(["distill", f"output_dir={tmp_path / 'd'}", "train.loggers=[mlflow]"])
    assert code == 2 and "train.loggers has 'mlflow' but the mlflow package" in capsys.readouterr().err


def test_csv_and_tensorboard_write_in_the_run_folder(tmp_path) -> None:
    loggers = lg.build_loggers(["csv", "tensorboard"], tmp_path, run_name="r")
    for logger in loggers:
        logger.log_metrics({"loss": 1.5}, step=0)
        logger.finalize("success")
    rows = list(csv.DictReader(open(tmp_path / "logs" / "metrics.csv")))
    assert rows[0]["loss"] == "1.5"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.skipif(not HAS_WANDB, reason="wandb is an optional package (pip install 'geodino[tracking]')")
def test_wandb_offline_writes_a_local_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    (logger,) = lg.build_loggers(["wandb"], tmp_path, run_name="r", options={"wandb": {"offline": True}})
    logger.log_hyperparams({"batch_size": 4})
    logger.log_metrics({"loss": 1.5}, step=0)
    logger.experiment.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


@pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow is an optional package (pip install 'geodino[tracking]')")
def test_pretrain_logs_to_mlflow_in_a_file_store(tmp_path, tiny_data, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # set by the default file store, restored after
    cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    out = pretrain(
        load_config(PretrainConfig, cfg_path, ["trainer.loggers=[csv,mlflow]", "checkpoint.export_at_end=false"])
    )
    metric_files = list((out / "mlruns").rglob("metrics/dino_global_loss"))
    assert len(metric_files) == 1
    steps = [int(line.split()[2]) for line in metric_files[0].read_text().splitlines()]
    assert steps == [0, 1]  # both logged steps, as in logs/metrics.csv
    assert (out / "schedules.png").read_bytes()[:4] == b"\x89PNG"


def test_schedules_plot_is_a_png(tmp_path) -> None:
    from geodino.train.recipe import SSLConfig
    from geodino.train.schedules import Schedules

    path = Schedules.build(SSLConfig(), 125_000, 8).plot(tmp_path / "s.png")
    assert path == tmp_path / "s.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
