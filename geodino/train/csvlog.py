"""A CSV logger whose resumed run continues the same `metrics.csv` (one file per run for curves and notebooks).

Lightning's CSVLogger deletes an existing `metrics.csv` when a run starts again in its folder. This one keeps
it: the rows logged before the first step the new run logs stay (a resumed run restarts at its checkpoint's
step, so rows the killed run logged after that checkpoint are replaced, never duplicated), and new rows are
appended under the union of the columns. A fresh run (step 0) thus starts a fresh file, as before.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _ContinuingWriter(ExperimentWriter):
    """Keeps the rows of an existing metrics.csv that precede the new run's first step."""

    def _check_log_dir_exists(self) -> None:  # Lightning's version deletes metrics.csv
        self._previous: list[dict[str, Any]] | None = None
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self._previous = list(csv.DictReader(f))

    def save(self) -> None:
        if self._previous is not None and self.metrics:
            # first save of this run: the kept rows and the new ones, written under a temporary name and renamed,
            # so a kill never loses the earlier rows
            first = min(int(m.get("step", 0)) for m in self.metrics)
            # a row cut short by a kill has fewer values (None) or, glued to the next row, more (key None): dropped
            kept = [r for r in self._previous if None not in r and None not in r.values()]
            kept = [{k: v for k, v in r.items() if v != ""} for r in kept]
            kept = [r for r in kept if (s := _step(r)) is not None and s < first]  # no step: dropped
            self._record_new_keys()
            self.metrics_keys = sorted(set(self.metrics_keys).union(*(r.keys() for r in kept)))
            self._write_rows(self.metrics_keys, kept + self.metrics)
            self.metrics = []
            self._previous = None
        super().save()

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        """Lightning rewrites metrics.csv in place when a new column appears: a kill then would lose every earlier
        row; here the rewrite goes to a temporary name that replaces the file when complete."""
        with open(self.metrics_file_path, newline="") as f:
            rows = list(csv.DictReader(f))
        self._write_rows(fieldnames, rows)

    def _write_rows(self, fieldnames: list[str], rows: list[dict[str, Any]]) -> None:
        from geodino.io import atomic_path

        # not synced: the log is rewritten at most a few times a run, and a lost tail is re-logged on resume
        with atomic_path(self.metrics_file_path, durable=False) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def _step(row: dict[str, Any]) -> int | None:
    try:
        return int(float(row.get("step", "")))
    except ValueError:
        return None


class ContinuingCSVLogger(CSVLogger):
    """`CSVLogger` that continues an existing `metrics.csv` after a resume (see the module docstring)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:  # a _ContinuingWriter (set below only); the base class types it more widely
            return self._experiment  # type: ignore[return-value]
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment
