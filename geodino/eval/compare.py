"""Several backbones on one probe suite, side by side (`geodino probe --compare SPEC ...`).

A probe number is read against something: the strongest simple baseline (`baseline:colour`), the same ViT at
random initialisation, another checkpoint. `run_comparison` runs the suite once per backbone, each into its own
folder with its own results.json (every comparison spec checked without loading weights, so a bad one fails before
the long run; then the main backbone, checked against every task and run; then the comparisons), then writes
OUT/comparison.md and OUT/comparison.json: one row per (task, metric) in the main run's order, one column per
backbone, and each comparison's difference to the main backbone; bookkeeping values apart, without differences; a
note per task a comparison backbone could not run (a four-layer head on the one-block colour baseline), whose cells
read "-".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from geodino.io import atomic_path, json_text

COMPARE_DIR = "compare"  # OUT/compare/<i>_<slug>/ holds each comparison's run


def slug(spec: str, index: int) -> str:
    """A folder name for a backbone spec: its index and the spec with anything but letters, digits, '.', '-'
    replaced (`1_baseline_colour`, `2_arch_vit_small_seed_0`)."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", Path(spec).name if "/" in spec and ":" not in spec else spec)
    return f"{index}_{name.strip('_')[:60] or 'backbone'}"


def comparison_rows(runs: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """[{task, metric, kind, values: {spec: value or None}}] over the main run's (task, metric) pairs, then any pair
    only a comparison has; `runs[0]` is the main backbone. `kind` is `score` or `info` (bookkeeping such as pixel
    counts and the last training loss: shown, never differenced; see `geodino.eval.runner.metric_kind`)."""
    from geodino.eval.runner import metric_kind

    keys: list[tuple[str, str]] = []
    values: dict[tuple[str, str], dict[str, float]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for spec, rows in runs:
        for r in rows:
            key = (str(r["task"]), str(r["metric"]))
            if key not in values:
                keys.append(key)
                values[key] = {}
                kinds[key] = str(r.get("kind") or metric_kind(key[1]))
            values[key][spec] = float(r["value"])
    return [
        {"task": t, "metric": m, "kind": kinds[(t, m)], "values": {s: values[(t, m)].get(s) for s, _ in runs}}
        for t, m in keys
    ]


def comparison_markdown(
    runs: list[tuple[str, list[dict[str, Any]]]], suite: str, skipped: dict[str, dict[str, str]] | None = None
) -> str:
    """The comparison table (Markdown): a column per backbone and, per comparison, its difference to the main;
    bookkeeping rows (counts, last training loss) in a second table without differences; then a note per task a
    backbone skipped (`skipped`: spec -> {task: why}), whose cells read "-"."""
    main = runs[0][0]
    others = [s for s, _ in runs[1:]]
    head = ["task", "metric", f"`{main}`"] + [c for s in others for c in (f"`{s}`", "Δ")]
    lines = [
        f"# Probe comparison: {suite}",
        "",
        f"Main backbone `{main}`; Δ = comparison minus main (for error metrics such as MAE, lower is better).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    rows = comparison_rows(runs)
    for row in (r for r in rows if r["kind"] == "score"):
        v = row["values"]
        cells = [row["task"], row["metric"], _fmt(v[main])]
        for s in others:
            delta = None if v[s] is None or v[main] is None else v[s] - v[main]
            cells += [_fmt(v[s]), "-" if delta is None else f"{delta:+.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    info = [r for r in rows if r["kind"] == "info"]
    if info:
        specs = [main, *others]
        lines += [
            "",
            "Run details (counts and the last training loss: bookkeeping, not scores, so no Δ):",
            "",
            "| task | metric | " + " | ".join(f"`{s}`" for s in specs) + " |",
            "|" + "---|" * (2 + len(specs)),
        ]
        lines += [
            "| " + " | ".join([r["task"], r["metric"], *(_fmt(r["values"][s]) for s in specs)]) + " |" for r in info
        ]
    notes = [(s, task, why) for s in [main, *others] for task, why in (skipped or {}).get(s, {}).items()]
    if notes:
        lines += ["", "Not run (its cells read -):", ""]
        lines += [f"- `{s}` skipped {task}: {why}" for s, task, why in notes]
    return "\n".join(lines) + "\n"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def run_comparison(cfg: Any, spec: str | None, compare: list[str], out_dir: str | Path) -> Path:
    """Run the suite on `spec` (into OUT) and then on each of `compare` (into OUT/compare/<i>_<slug>/), and write
    OUT/comparison.md and OUT/comparison.json; returns the Markdown file's path.

    Every comparison spec is checked first without loading weights (`check_spec`: a bad option or a missing file
    stops before any run), then the main backbone is loaded once, checked against every task (a task it cannot run
    stops everything before any run) and run. A comparison backbone that cannot run a task (a four-layer head on a
    one-block baseline) skips it with a warning, and the comparison notes why. At most one backbone is in memory at
    a time: each is loaded, run and released (`release_backbones`) before the next loads, so the peak is the
    largest backbone rather than the main plus one."""
    import copy

    from geodino.backbones.load import check_spec
    from geodino.errors import ConfigError
    from geodino.eval.runner import prepare_suite, read_results, release_backbones, run_prepared, run_suite

    main = spec or cfg.backbone
    if not main:
        raise ConfigError("no backbone: pass --backbone SPEC (a checkpoint, arch:vit_small, timm:<name>, ...)")
    out = Path(out_dir).expanduser()
    if any(not str(c).strip() for c in compare):
        raise ConfigError("--compare got an empty backbone spec")
    folders = [out] + [out / COMPARE_DIR / slug(str(c), i) for i, c in enumerate(compare, 1)]
    specs = [str(main)] + [str(c) for c in compare]
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise ConfigError(f"--compare names {twice[0]!r} twice (or as the --backbone itself); give each once")
    for c in specs[1:]:
        check_spec(c)  # a typo in a comparison spec stops here, not after the main run
    main_suite = prepare_suite(copy.deepcopy(cfg), specs[0], folders[0])  # stops here if main cannot run a task
    rows: list[list[dict[str, Any]]] = [[] for _ in specs]
    try:
        rows[0] = run_prepared(main_suite)
    finally:
        release_backbones(main_suite)  # the main backbone is loaded once, and gone before a comparison loads
    skipped: dict[str, dict[str, str]] = {}
    for k in range(1, len(specs)):
        rows[k] = run_suite(copy.deepcopy(cfg), specs[k], folders[k], skip_unfit=True)
        release_backbones()  # run_suite's backbones are unreferenced now; collect them before the next load
        skipped[specs[k]] = dict(read_results(folders[k]).get("skipped") or {})
    runs = list(zip(specs, rows, strict=True))
    payload = {
        "suite": cfg.name,
        "backbones": specs,
        "folders": [str(f) for f in folders],
        "rows": comparison_rows(runs),
        "skipped": {s: t for s, t in skipped.items() if t},
    }
    with atomic_path(out / "comparison.json") as tmp:
        tmp.write_text(json_text(payload, indent=1))
    md = out / "comparison.md"
    with atomic_path(md) as tmp:
        tmp.write_text(comparison_markdown(runs, cfg.name, skipped))
    return md
