"""A probe suite's results files: `results.json` (every row, the configs that made them, skipped tasks) and
`results.md` (the table people read), written atomically when a suite ends and read back by `--compare`.

Kept apart from the runner (`runner.py`, which re-exports these names) so that the file format, and which metrics
are bookkeeping rather than scores (`metric_kind`), have one home that `compare.py` and the runner share.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import typing
from pathlib import Path
from typing import Any

from geodino.errors import InputError
from geodino.io import atomic_path, json_text

if typing.TYPE_CHECKING:
    from geodino.eval.runner import SuiteConfig


INFO_METRICS = ("n_pixels", "val_tiles", "val_images", "train_loss", "n_train", "train_fraction")
"""Values a task returns beside its scores for bookkeeping (evaluated pixels, tiles or images; the last epoch's
training loss; a label budget's training images and the share of the training split they are): kept in
results.json with kind `info`, listed apart in results.md, never differenced by --compare."""


COUNT_METRICS = ("n_pixels", "val_tiles", "val_images", "n_train")
"""Info rows that are counts: results.md and comparison.md show them as whole numbers (180, not 180.0000)."""


def format_value(metric: str, value: float | None) -> str:
    """A table cell: a count (COUNT_METRICS) holding a whole number as an integer, anything else with 4 decimals;
    `-` for None."""
    if value is None:
        return "-"
    v = float(value)
    if metric in COUNT_METRICS and math.isfinite(v) and v.is_integer():
        return str(int(v))
    return f"{v:.4f}"


def metric_kind(metric: str) -> str:
    """`info` for bookkeeping values (INFO_METRICS), `score` for everything a probe reports as a result."""
    return "info" if metric in INFO_METRICS else "score"


LOWER_IS_BETTER = ("MAE", "RMSE", "nMAE")
"""Error metrics (canopy height, metres): a smaller value is better, so a negative Δ is an improvement."""
ZERO_IS_BETTER = ("bias",)
"""Signed errors: closer to 0 is better, so a Δ's sign says nothing by itself."""


def better(metric: str) -> str:
    """Which way a score improves: `lower` (errors), `zero` (signed bias) or `higher` (everything else)."""
    return "lower" if metric in LOWER_IS_BETTER else "zero" if metric in ZERO_IS_BETTER else "higher"


PROPORTION_METRIC = re.compile(r"(^|_)top[15](@k\d+)?$")
"""Scores that are a fraction of independent test images classified right (`knn_top1@k20`, `linear_top1`,
`logreg_top5`): the ones a binomial (Wilson) interval fits. Balanced accuracy, F1, mAP, mIoU, pixel accuracy and
errors are not a count of independent successes, so they get no interval."""

Z95 = 1.959963984540054  # the two-sided 95 % standard-normal quantile


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `p` observed on `n` trials (95 % by default). Unlike p +- z*se it
    stays inside [0, 1] and is not zero-width at p = 0 or 1, which small probe test sets often hit."""
    if n <= 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"wilson_interval needs n > 0 and 0 <= p <= 1, got p={p}, n={n}")
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def add_intervals(rows: list[dict[str, Any]], n_eval: int) -> None:
    """Give each proportion row (PROPORTION_METRIC) of a single-label task evaluated on `n_eval` test images its
    `n_eval` and `ci95` (Wilson, [lo, hi]): the test-set sampling uncertainty of a single-seed number."""
    for r in rows:
        if n_eval > 0 and PROPORTION_METRIC.search(str(r["metric"])) and 0.0 <= float(r["value"]) <= 1.0:
            r["n_eval"] = int(n_eval)
            r["ci95"] = [round(x, 6) for x in wilson_interval(float(r["value"]), int(n_eval))]


GENERIC_FOLDERS = frozenset(
    ("train", "training", "val", "valid", "validation", "test", "testing", "images", "image", "imgs", "img", "rgb",
     "masks", "mask", "labels", "label", "chm", "chms", "tiles", "data", "annotations", "boxes")
)  # fmt: skip
"""Folder names that say which split or layer a folder holds, not which dataset: `dataset_label` looks past them."""


def dataset_label(cfg: Any, data: Any = None) -> str:
    """A short dataset label for the table: the adapter name (`image_folder:<root folder>`), else the nearest folder
    of the training images that is not a split or layer name (GENERIC_FOLDERS): `neon_canopy` for
    data/neon_canopy/train/RGB, which read `RGB` (and LoveDA-style train/images folders `images`)."""
    sub = data if data is not None else getattr(cfg, "data", None)
    name = getattr(sub, "name", "") if sub is not None else ""
    if name:
        root = str(getattr(sub, "root", "") or "")
        return f"{name}:{Path(root).name}" if name == "image_folder" and root else str(name)
    for attr in ("train_images", "images", "root"):
        value = getattr(cfg, attr, None)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, str) and value:
            p = Path(value)
            folder = p.parent if p.suffix or any(ch in p.name for ch in "*?[") else p
            named = [q.name for q in (folder, *folder.parents) if q.name and q.name.lower() not in GENERIC_FOLDERS]
            return named[0] if named else folder.name or "?"
    return "?"


def write_results(
    out: Path,
    cfg: SuiteConfig,
    spec: str,
    fingerprint: str,
    rows: list[dict],
    started: str,
    parsed: dict,
    skipped: dict[str, str],
    pending: list[str] | None = None,
    weights_sha256: str | None = None,
) -> None:
    """results.json (rows, the configs that made them, skipped tasks) and results.md (the scores, then the
    bookkeeping rows, then the skipped tasks), both atomic. `pending`: the tasks of this run not finished yet (the
    files are rewritten after each task): recorded as `pending` with `complete: false` in results.json and as a line
    at the top of results.md, so the table of a run that is still going, crashed or was killed does not read as a
    whole suite's. `weights_sha256`: the backbone's weights file's own sha256 (`FrozenBackbone.weights_sha256`;
    what `sha256sum` prints, which the fingerprint, a hash over it and the options, cannot be checked against),
    recorded as `model_file_sha256` when there is one; `versions` records torch's and scikit-learn's too."""
    from geodino.config import to_dict

    payload = {
        "suite": cfg.name,
        "backbone": spec,
        "fingerprint": fingerprint,
        "seed": cfg.seed,
        "device": cfg.device,  # not in the config hash; features.fast=auto on a GPU runs bf16, the CPU float32
        "started": started,
        "geodino_version": geodino_version(),
        "versions": library_versions(),  # the probes' numbers depend on the libraries' kernels and solvers too
        **({"model_file_sha256": weights_sha256} if isinstance(weights_sha256, str) and weights_sha256 else {}),
        "command": shlex.join(sys.argv),  # the command line of the process that wrote this file
        "complete": not pending,
        "pending": list(pending or []),
        "rows": rows,
        "skipped": skipped,
        "configs": {
            n: {
                "type": t.type,
                "backbone_bands": t.backbone_bands,
                "backbone_sensor": t.backbone_sensor,
                **to_dict(t.cfg),
                **({"data": to_dict(t.data)} if t.data is not None else {}),
            }
            for n, t in parsed.items()
        },
    }
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json_text(payload, indent=1, default=str))
    table_head = ["| task | dataset | metric | value | backbone | config |", "|---|---|---|---|---|---|"]

    def line(r: dict[str, Any]) -> str:
        value = format_value(r["metric"], r["value"])
        return f"| {r['task']} | {r['dataset']} | {r['metric']} | {value} | `{r['backbone']}` | `{r['config_hash']}` |"

    lines = [
        f"# Probe results: {cfg.name}",
        "",
        f"Backbone `{spec}` (fingerprint `{fingerprint[:16]}`), seed {cfg.seed}, device {cfg.device}, "
        f"started {started}, geodino {geodino_version()}.",
        "",
        *(_unfinished_note(pending) if pending else []),
        *table_head,
        *(line(r) for r in rows if r.get("kind") != "info"),
    ]
    info = [line(r) for r in rows if r.get("kind") == "info"]
    if info:
        lines += ["", "Run details (bookkeeping: counts and the last training loss, not scores):", "", *table_head]
        lines += info
    ci = [r for r in rows if r.get("ci95")]
    if ci:
        lines += [
            "",
            "95 % Wilson intervals of the proportion scores (test-set sampling only: one seed, one split):",
            "",
            "| task | metric | value | n (test images) | 95 % interval |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['task']} | {r['metric']} | {r['value']:.4f} | {r['n_eval']} | "
            f"[{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}] |"
            for r in ci
        ]
    if skipped:
        lines += ["", "Skipped on this backbone:", ""] + [f"- {n}: {why}" for n, why in skipped.items()]
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _unfinished_note(pending: list[str]) -> list[str]:
    """The results.md lines of a run whose tasks `pending` have not finished (yet)."""
    return [
        f"**Unfinished run**: {len(pending)} task{'s' if len(pending) > 1 else ''} of this run "
        f"({', '.join(pending)}) had not finished when this table was written: the run is still going, or it "
        "stopped (an error, a kill). The rows below are the finished tasks'; rerun the suite for the rest.",
        "",
    ]


def geodino_version() -> str:
    """The installed geodino version, recorded in results.json and comparison.json."""
    from geodino import __version__

    return str(__version__)


def library_versions() -> dict[str, str | None]:
    """The installed versions of what the probes compute with (from the packages' metadata, nothing imported; None
    for one not installed): another torch or scikit-learn may move a score as another backbone does."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("torch", "scikit-learn", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def read_results(out_dir: str | Path) -> dict[str, Any]:
    """The results.json of a finished suite."""
    path = Path(out_dir) / "results.json"
    if not path.is_file():
        raise InputError(
            f"{path} not found; run `geodino probe` with --out {out_dir} first (run_suite(..., out_dir=...) in Python)"
        )
    return json.loads(path.read_text())
