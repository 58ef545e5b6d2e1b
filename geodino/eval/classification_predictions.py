"""Per-image test predictions of the classification probe, and the paired (McNemar) test they allow.

Two backbones probed on one task score the SAME test images, so whether their top-1 accuracies differ is a paired
question: only the images one head gets right and the other wrong (the discordant pairs, b and c) carry
information. McNemar's exact test asks whether b and c could be a fair coin's split of b + c: two-sided
p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)]). Overlapping Wilson intervals (comparison.md's dagger) are a
conservative screen: 0.70 vs 0.75 on 400 images overlap, yet with the 20 differing images all going one way
p = 2 * 0.5**20 = 1.9e-6.

`run_classification` writes `predictions.csv` in the task's folder (single-label only): one row per scored image,
`id` (the file relative to the dataset root, else the sample's index), `true` and one column per head (`knn` at
the reported k, `linear`, `logreg`) holding class names (indices where the dataset has none). Multi-label tasks
(BigEarthNet) write none: a McNemar test per label gives 19 p-values rather than one, and mAP is not a per-image
right/wrong score; `geodino probe --compare` reports no p for them.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.io import atomic_path

if TYPE_CHECKING:  # only tensors' .tolist() is used: no torch import for `geodino probe --compare`'s table
    import torch

PREDICTIONS_FILE = "predictions.csv"
HEADS = ("knn", "linear", "logreg")  # the heads `_Report.score` scores; `<head>_top1` is the row a p belongs to


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value over the discordant pairs (b: right only by one, c: only by the other):
    min(1, 2 * P[X <= min(b, c)]), X ~ Binomial(b + c, 1/2) (= scipy.stats.binomtest(b, b + c).pvalue); 1.0 for
    no discordant pair (nothing tells the two apart)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2.0 * tail / 2**n)  # exact in integers up to the division


def write_predictions(
    path: Path, ids: list[str], targets: torch.Tensor, preds: dict[str, torch.Tensor], classes: list[str] | None
) -> None:
    """Write `predictions.csv` (atomically): `id`, `true` and one predicted-class column per head in `preds`."""
    heads = [h for h in HEADS if h in preds] + [h for h in preds if h not in HEADS]

    def name(i: int) -> str:
        return str(classes[i]) if classes and 0 <= i < len(classes) else str(i)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "true", *heads])
    cols = [targets.tolist()] + [preds[h].tolist() for h in heads]
    for i, row in enumerate(zip(*cols, strict=True)):
        w.writerow([ids[i], *(name(int(v)) for v in row)])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def clear_predictions(task_dir: Path) -> None:
    """Remove an earlier run's `predictions.csv` at a task's start. `classification.json` is safe to leave: every
    finished run rewrites it. This file is written only by single-label runs and read by `--compare` wherever it
    exists, so one left by an earlier run (a rerun that failed, or one that writes none: multi-label) would pair
    the old predictions with the new run's scores."""
    (task_dir / PREDICTIONS_FILE).unlink(missing_ok=True)


def sample_ids(files: list[str] | None, n: int) -> list[str]:
    """The id of each scored image: its file (relative to the dataset root) where the dataset has files, else its
    index in the split (`#0`, `#1`, ...)."""
    if files is not None and len(files) == n and len(set(files)) == n:
        return list(files)
    return [f"#{i}" for i in range(n)]


def read_predictions(path: Path) -> dict[str, dict[str, str]]:
    """{id: {"true": label, head: predicted label, ...}} from a `predictions.csv`."""
    with open(path, newline="") as f:
        return {row.pop("id"): row for row in csv.DictReader(f)}


def paired_test(main_dir: Path, other_dir: Path, head: str) -> dict[str, Any]:
    """McNemar's test of `head` between two runs of one task (their task folders), on images matched by id:
    {"n", "b" (right only by the main backbone), "c" (right only by the other), "p"}, or {"skipped": why} where
    the test cannot be made (no predictions, another test set, the head missing)."""
    a_path, o_path = main_dir / PREDICTIONS_FILE, other_dir / PREDICTIONS_FILE
    if not a_path.is_file() or not o_path.is_file():
        return {"skipped": f"no {PREDICTIONS_FILE} in a run's task folder (multi-label task, or an older run)"}
    a, o = read_predictions(a_path), read_predictions(o_path)
    if set(a) != set(o):
        return {
            "skipped": f"the two runs scored different test images ({len(a)} vs {len(o)}, {len(set(a) ^ set(o))} "
            "not in both)"
        }
    if any(a[i]["true"] != o[i]["true"] for i in a):
        return {"skipped": "the two runs give some test images different true labels"}
    if not a or head not in next(iter(a.values())) or head not in next(iter(o.values())):
        return {"skipped": f"no {head} predictions in both runs"}
    b = sum(a[i][head] == a[i]["true"] and o[i][head] != o[i]["true"] for i in a)
    c = sum(a[i][head] != a[i]["true"] and o[i][head] == o[i]["true"] for i in a)
    return {"n": len(a), "b": b, "c": c, "p": mcnemar_p(b, c)}


def add_paired_tests(rows: list[dict[str, Any]], specs: list[str], folders: list[Path]) -> None:
    """Add `mcnemar` ({comparison spec: `paired_test` result}) to each `<head>_top1` row of `comparison_rows`,
    the main backbone (`specs[0]`, run in `folders[0]`) against each comparison; `folders[k] / task` is a task's
    folder. Rows of other metrics, and tasks without predictions, get none."""
    for row in rows:
        head = str(row["metric"]).removesuffix("_top1")
        if head not in HEADS or row["metric"] != f"{head}_top1" or row.get("kind") != "score":
            continue
        main = folders[0] / str(row["task"])
        if not (main / PREDICTIONS_FILE).is_file():
            continue  # multi-label, or not a classification task: no per-image right/wrong
        row["mcnemar"] = {
            s: paired_test(main, f / str(row["task"]), head)
            for s, f in zip(specs[1:], folders[1:], strict=True)
            if row["values"].get(s) is not None
        }


def format_p(p: float) -> str:
    """A p-value for a table cell: two significant digits (`0.031`, `1.9e-06`)."""
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"
