"""A `--compare` table in words: one sentence per comparison backbone and headline metric saying whether the
main backbone scored above it, by how much, and what the paired test says of the difference.

One home for this wording: `comparison_markdown` ends comparison.md with these sentences (which `geodino probe`
prints with the table) and `geodino demo` prints the same ones, so the two never word a result differently. A
top-1 row with a McNemar p (comparison.json's `mcnemar`) says whether the difference is unlikely to be test-set
noise (p < 0.05) or not shown on these test chips; only then does a sentence say "beats". Rows without a paired
test (mIoU, RMSE, mAP) say which side is ahead, minding the metrics where lower is better (`results.better`).
"""

from __future__ import annotations

import math
import re
from typing import Any

HEADLINE = re.compile(r"^(knn|linear|logreg)_(top1|mAP)$|^(mIoU|RMSE|mAP)$")
"""The metric of each probe head a reader looks at first: top-1 of the single-label heads (the reported k for
kNN, not each `@kN`), mAP of the multi-label ones, mIoU of segmentation, RMSE of canopy height, mAP of detection.
Balanced accuracy, F1, pixel accuracy and the other errors stay in the table."""

MAIN = "the backbone"  # how a sentence names the main backbone (`--backbone`)


def paired_meaning(p: float) -> str:
    """What an exact McNemar p of two backbones on the same test images shows (p < 0.05 or not)."""
    return "unlikely to be test-set noise" if p < 0.05 else "a difference is not shown on these test chips"


def verdict_line(row: dict[str, Any], main: str, other: str) -> str:
    """One sentence on `row` (a comparison.json row): the backbone ahead first, then the values in the order the
    sentence names the backbones, the first minus the second (so "c beats the backbone: 0.882 vs 0.845 (+0.037)"
    reads as it is said; with the main backbone's value always first, that sentence read "0.845 vs 0.882 (-0.037)"),
    and the paired test's p and meaning where the row has one; "" when either value is missing or NaN."""
    from geodino.eval.classification_predictions import format_p
    from geodino.eval.results import better

    values = row.get("values") or {}
    a, b = values.get(main), values.get(other)
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return ""
    lower = (row.get("better") or better(str(row["metric"]))) == "lower"
    test = (row.get("mcnemar") or {}).get(other) or {}
    p = test.get("p")
    p = None if p is None or math.isnan(p) else float(p)
    if p is not None:
        note = f"McNemar p = {format_p(p)}: {paired_meaning(p)}"
    elif test.get("skipped"):
        note = "no paired test: comparison.md says why"
    else:
        note = "no paired test for this metric"
    where = f"{row['task']}/{row['metric']}" + (" (lower is better)" if lower else "")
    first, second = a, b
    if a == b:
        head = f"{MAIN} and {other} tie on {where}"
    else:
        main_ahead = (a < b) if lower else (a > b)
        winner, loser = (MAIN, other) if main_ahead else (other, MAIN)
        first, second = (a, b) if main_ahead else (b, a)
        verb = "beats" if p is not None and p < 0.05 else "is ahead of"
        head = f"{winner} {verb} {loser} on {where}"
    return f"{head}: {first:.3f} vs {second:.3f} ({first - second:+.3f}; {note})"


def verdict_lines(rows: list[dict[str, Any]], main: str, others: list[str]) -> list[str]:
    """A `verdict_line` per comparison backbone in `others` (in order) and headline score row (`HEADLINE`) of
    `rows` (comparison_rows, with add_paired_tests' `mcnemar`) where both backbones have a value."""
    lines = []
    for other in others:
        for row in rows:
            if row.get("kind", "score") == "score" and HEADLINE.match(str(row["metric"])):
                line = verdict_line(row, main, other)
                if line:
                    lines.append(line)
    return lines


def verdict_markdown(rows: list[dict[str, Any]], main: str, others: list[str]) -> list[str]:
    """comparison.md's closing section: `verdict_lines` as a list under a heading line (none when empty)."""
    lines = verdict_lines(rows, main, others)
    if not lines:
        return []
    head = (
        f"In words ({MAIN}: `{main}`; the values in the order each sentence names the backbones, the difference the "
        "first minus the second; one seed, one run; "
        '"beats" only where the paired test\'s p < 0.05):'
    )
    return ["", head, "", *(f"- {line}" for line in lines)]
