"""`geodino probe --compare` says in words whether the backbone beat each comparison (comparison.md's last lines,
which the CLI prints with the table), and `geodino demo` prints the same sentences.

Before: the probe printed the table only; a user read 0.845 vs 0.882 with p=0.0071 in a cell and had to know what
it meant, while the demo worded its own verdict (colour statistics only)."""

from __future__ import annotations

from geodino.eval.compare import comparison_markdown
from geodino.eval.compare_verdict import verdict_lines


def _rows() -> list[dict]:
    """A fake comparison.json's rows: main `m`, comparisons `c` (colour) and `r` (random)."""

    def row(task: str, metric: str, m, c, r, better: str = "higher", kind: str = "score") -> dict:
        return {"task": task, "metric": metric, "kind": kind, "better": better, "values": {"m": m, "c": c, "r": r}}

    rows = [
        row("es", "knn_top1@k10", 0.85, 0.88, 0.70),  # not a headline metric
        row("es", "knn_top1", 0.845, 0.882, 0.70),
        row("es", "knn_macro_f1", 0.84, 0.87, 0.69),  # not a headline metric
        row("es", "linear_top1", 0.887, 0.862, 0.80),
        row("seg", "mIoU", 0.40, 0.38, None),  # r has no value (skipped the task): no line for it
        row("chm", "RMSE", 3.1, 3.4, 2.9, better="lower"),
        row("chm", "MAE", 2.1, 2.4, 2.0, better="lower"),  # not a headline metric
        row("seg", "n_pixels", 100.0, 90.0, 80.0, kind="info"),
        row("bw", "knn_top1", 0.5, 0.5, float("nan")),
    ]
    rows[1]["mcnemar"] = {"c": {"n": 600, "b": 20, "c": 42, "p": 0.007148733833163067}, "r": {"skipped": "ids"}}
    rows[3]["mcnemar"] = {"c": {"n": 600, "b": 48, "c": 33, "p": 0.11927366831176445}}
    return rows


EXPECTED = [
    "c beats the backbone on es/knn_top1: 0.882 vs 0.845 (+0.037; McNemar p = 0.0071: unlikely to be test-set noise)",
    "the backbone is ahead of c on es/linear_top1: 0.887 vs 0.862 (+0.025; McNemar p = 0.12: a difference is not "
    "shown on these test chips)",
    "the backbone is ahead of c on seg/mIoU: 0.400 vs 0.380 (+0.020; no paired test for this metric)",
    "the backbone is ahead of c on chm/RMSE (lower is better): 3.100 vs 3.400 (-0.300; no paired test for this metric)",
    "the backbone and c tie on bw/knn_top1: 0.500 vs 0.500 (+0.000; no paired test for this metric)",
    "the backbone is ahead of r on es/knn_top1: 0.845 vs 0.700 (+0.145; no paired test: comparison.md says why)",
    "the backbone is ahead of r on es/linear_top1: 0.887 vs 0.800 (+0.087; no paired test for this metric)",
    "r is ahead of the backbone on chm/RMSE (lower is better): 2.900 vs 3.100 (-0.200; no paired test for this metric)",
]


def test_one_sentence_per_comparison_and_headline_metric():
    assert verdict_lines(_rows(), "m", ["c", "r"]) == EXPECTED


def test_comparison_md_ends_with_the_sentences():
    runs = [(s, [{"task": "es", "metric": "knn_top1", "value": 0.5}]) for s in ("m", "c", "r")]
    md = comparison_markdown(runs, "suite", rows=_rows())
    tail = md.rstrip("\n").split("\n")
    assert tail[-len(EXPECTED) :] == [f"- {line}" for line in EXPECTED]
    head = "In words (the backbone: `m`; the values in the order each sentence names the backbones, the difference"
    assert tail[-len(EXPECTED) - 2].startswith(head)


def test_the_demo_prints_the_same_sentences(capsys):
    from geodino.demo import _print_verdict

    _print_verdict({"backbones": ["m", "r", "c"], "rows": _rows()})
    out = capsys.readouterr().out.splitlines()
    assert out[-len(EXPECTED) :] == [f"- {line}" for line in verdict_lines(_rows(), "m", ["r", "c"])]
