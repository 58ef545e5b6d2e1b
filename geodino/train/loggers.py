"""Experiment trackers of a run: Lightning's loggers (CSV, TensorBoard, W&B, MLflow) as Lightning offers them.

`trainer.loggers` (pretraining) and `train.loggers` (distillation) name them; `logger_options.<name>` passes
keyword arguments through to the Lightning logger (e.g. `logger_options.wandb.project=geo`). W&B and MLflow are
optional packages (`pip install 'geodino[tracking]'`): a config that names one that is not installed fails before
any work, in one line naming the pip install. Pretraining hands the loggers to the Lightning Trainer;
distillation (a plain loop) calls the same objects itself (`log_metrics`, `log_hyperparams`, `finalize`).

Defaults keep everything inside the run folder and offline-friendly: TensorBoard in `<run>/tensorboard`, MLflow
in `<run>/mlruns` (a `file:` store) unless `MLFLOW_TRACKING_URI` or `logger_options.mlflow.tracking_uri` says
otherwise, W&B files in `<run>` (set `WANDB_MODE=offline` to sync later with `wandb sync`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError, did_you_mean

__all__ = ["LOGGERS", "build_loggers", "check_loggers"]

# logger name -> the optional package it needs (None: installed with geodino)
LOGGERS: dict[str, str | None] = {"csv": None, "tensorboard": None, "wandb": "wandb", "mlflow": "mlflow"}


def _installed(package: str) -> bool:
    """Whether `package` can be imported, without importing it (wandb and mlflow take seconds to import)."""
    if package == "mlflow":  # Lightning accepts mlflow or mlflow-skinny; both install the `mlflow` module
        return importlib.util.find_spec("mlflow") is not None
    return importlib.util.find_spec(package) is not None


def check_loggers(names: list[str], options: dict[str, Any], key: str) -> None:
    """Raise ConfigError for an unknown logger name, options for a logger not listed, or a missing package.

    `key` is the config key that lists them (`trainer.loggers` or `train.loggers`), named in the message.
    """
    for name in names:
        if name not in LOGGERS:
            close = did_you_mean(str(name), list(LOGGERS))
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key} has {name!r}; use any of {', '.join(LOGGERS)}{hint}")
        package = LOGGERS[name]
        if package and not _installed(package):
            raise ConfigError(
                f"{key} has {name!r} but the {package} package is not installed; "
                f"pip install 'geodino[tracking]' (or pip install {package}), or drop {name} from {key}"
            )
    opts_key = key.rsplit(".", 1)[0] + ".logger_options" if "." in key else "logger_options"
    for name, value in (options or {}).items():
        if name not in names:
            raise ConfigError(f"{opts_key}.{name} is set but {key} does not list {name!r}; add it or drop the options")
        if not isinstance(value, dict):
            raise ConfigError(f"{opts_key}.{name} must be a mapping of keyword arguments, got {value!r}")


def build_loggers(
    names: list[str], out_dir: Path, *, run_name: str, options: dict[str, Any] | None = None, key: str = "loggers"
) -> list[Any]:
    """The Lightning loggers named in `names`, writing under `out_dir` (see the module docstring for defaults).

    `csv` is geodino's resumable CSV logger (`<run>/logs/metrics.csv`); callers that keep their own CSV (the
    distillation loop's `log.csv`) leave it out of `names`.
    """
    options = dict(options or {})
    check_loggers(names, options, key)
    out: list[Any] = []
    defaults: dict[str, Any]  # each logger's own keyword arguments, updated by the user's
    for name in names:
        kw: dict[str, Any] = dict(options.get(name) or {})
        if name == "csv":
            from geodino.train.csvlog import ContinuingCSVLogger

            # a resumed run continues logs/metrics.csv (Lightning's CSVLogger would delete it)
            defaults = {"save_dir": str(out_dir), "name": "logs", "version": ""}
            out.append(ContinuingCSVLogger(**defaults | kw))
        elif name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            defaults = {"save_dir": str(out_dir), "name": "tensorboard", "version": "", "default_hp_metric": False}
            out.append(TensorBoardLogger(**defaults | kw))
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger

            defaults = {"name": run_name, "project": "geodino", "save_dir": str(out_dir)}
            out.append(WandbLogger(**defaults | kw))
        elif name == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger

            uri = kw.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
            if not uri:
                # no server named: a file store in the run folder, which needs no database package. MLflow 3 keeps
                # file stores in maintenance mode and refuses them unless this opt-in is set (only for our default)
                uri = (Path(out_dir).resolve() / "mlruns").as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            defaults = {"experiment_name": "geodino", "run_name": run_name, "tracking_uri": uri}
            out.append(MLFlowLogger(**defaults | kw))
    return out
