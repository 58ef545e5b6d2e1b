"""Several backbones on one probe suite, side by side (`geodino probe --compare SPEC ...`).

A probe number is read against something: the strongest simple baseline (`baseline:colour`), the same ViT at
random initialisation, another checkpoint. `run_comparison` runs the suite once per backbone, each into its own
folder with its own results.json (every comparison spec checked without loading weights, so a bad one fails before
the long run; then the main backbone, checked against every task and run; then the comparisons), then writes
OUT/comparison.md and OUT/comparison.json: one row per (task, metric) in the main run's order, one column per
backbone, and each comparison's difference to the main backbone; bookkeeping values apart, without differences; a
note per task a comparison backbone could not run (a four-layer head on the one-block colour baseline), whose cells
read "-"; last, each comparison's headline rows in words (`compare_verdict`: beats, or is ahead of, and the paired p).
"""

from __future__ import annotations

import math
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from geodino.errors import GeoDinoError, one_line
from geodino.eval.classification_predictions import add_paired_tests, format_p
from geodino.eval.compare_verdict import verdict_markdown
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
    from geodino.eval.results import better, metric_kind

    keys: list[tuple[str, str]] = []
    values: dict[tuple[str, str], dict[str, float | None]] = {}
    cis: dict[tuple[str, str], dict[str, list[float]]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for spec, rows in runs:
        for r in rows:
            key = (str(r["task"]), str(r["metric"]))
            if key not in values:
                keys.append(key)
                values[key] = {}
                cis[key] = {}
                kinds[key] = str(r.get("kind") or metric_kind(key[1]))
            values[key][spec] = None if r["value"] is None else float(r["value"])  # JSON null: a NaN
            if r.get("ci95"):
                cis[key][spec] = [float(x) for x in r["ci95"]]
    out = []
    for t, m in keys:
        row: dict[str, Any] = {"task": t, "metric": m, "kind": kinds[(t, m)], "better": better(m)}
        row["values"] = {s: values[(t, m)].get(s) for s, _ in runs}
        if cis[(t, m)]:  # Wilson 95 % intervals of proportion scores (results.add_intervals)
            row["ci95"] = {s: cis[(t, m)].get(s) for s, _ in runs}
        out.append(row)
    return out


def intervals_overlap(row: dict[str, Any], main: str, other: str) -> bool:
    """Whether the 95 % intervals of `main` and `other` on this row overlap (both must have one): a Δ then may be
    test-set sampling noise. A conservative screen, not a significance test: the two backbones scored the same test
    images, and a paired test (McNemar's, on per-image results) can find an overlapping pair different."""
    ci = row.get("ci95") or {}
    a, b = ci.get(main), ci.get(other)
    return bool(a and b and a[0] <= b[1] and b[0] <= a[1])


def comparison_markdown(
    runs: list[tuple[str, list[dict[str, Any]]]],
    suite: str,
    skipped: dict[str, dict[str, str]] | None = None,
    failed: dict[str, str] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> str:
    """The comparison table (Markdown): a column per backbone and, per comparison, its difference to the main;
    bookkeeping rows (counts, last training loss) in a second table without differences; then a note per task a
    backbone skipped (`skipped`: spec -> {task: why}) and per backbone that failed (`failed`: spec -> error line),
    whose cells read "-"; a dagger on a Δ whose two 95 % intervals overlap (`intervals_overlap`); `rows`
    (`comparison_rows` of `runs`, with `add_paired_tests`' McNemar results) puts `p=` after a top-1 Δ; last, the
    headline rows in words (`compare_verdict.verdict_markdown`)."""
    from geodino.eval.results import format_value

    main = runs[0][0]
    others = [s for s, _ in runs[1:]]
    rows = comparison_rows(runs) if rows is None else rows
    head = ["task", "metric", f"`{main}`"] + [c for s in others for c in (f"`{s}`", "Δ")]
    lines = [
        f"# Probe comparison: {suite}",
        "",
        f"Main backbone `{main}`; Δ = comparison minus main, on the same task and metric; {_sign_note(rows)}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    marked = tested = False
    for row in (r for r in rows if r["kind"] == "score"):
        v = row["values"]
        cells = [row["task"], row["metric"], _fmt(v[main])]
        for s in others:
            delta = None if v[s] is None or v[main] is None else v[s] - v[main]
            delta = None if delta is None or math.isnan(delta) else delta  # a NaN score (no blocks): no Δ
            mark = " †" if delta is not None and intervals_overlap(row, main, s) else ""
            marked = marked or bool(mark)
            p = (row.get("mcnemar") or {}).get(s, {}).get("p") if delta is not None else None
            mark += "" if p is None else f" p={format_p(p)}"
            tested = tested or p is not None
            cells += [_fmt(v[s]), "-" if delta is None else f"{delta:+.4f}{mark}"]
        lines.append("| " + " | ".join(cells) + " |")
    if marked:
        lines += [
            "",
            "† the two backbones' 95 % Wilson intervals (test-set size; results.md of each run) overlap: this Δ may "
            "be test-set sampling noise of single-seed numbers. Overlap is a conservative screen, not a test: both "
            "backbones scored the same test images, so a paired test on per-image results (McNemar's) can still find "
            "a Δ marked † significant, and a Δ without † is not shown significant by it either"
            + (": read p where given." if tested else "."),
        ]
    if tested:
        lines += [
            "",
            "p: exact two-sided McNemar test on the test images matched by id (predictions.csv of each run): of the "
            "images one backbone classifies right and the other wrong, could the split be a coin's? p < 0.05: the "
            "difference is unlikely to be sampling noise of these test images (still one seed, one training run).",
        ]
    untested = [
        f"- no p for {r['task']} {r['metric']}, `{s}`: {t['skipped']}"
        for r in rows
        for s, t in (r.get("mcnemar") or {}).items()
        if "skipped" in t
    ]
    if untested:
        lines += ["", "McNemar test not made (the Δ stands, without p):", "", *untested]
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
            "| "
            + " | ".join([r["task"], r["metric"], *(format_value(r["metric"], r["values"][s]) for s in specs)])
            + " |"
            for r in info
        ]
    notes = [(s, task, why) for s in [main, *others] for task, why in (skipped or {}).get(s, {}).items()]
    if notes or failed:
        lines += ["", "Not run (its cells read -):", ""]
        lines += [f"- `{s}` skipped {task}: {why}" for s, task, why in notes]
        lines += [f"- `{s}` failed (tasks it finished before are shown): {why}" for s, why in (failed or {}).items()]
    lines += verdict_markdown(rows, main, others)  # the headline rows in words, as `geodino demo` words them
    return "\n".join(lines) + "\n"


def _sign_note(rows: list[dict[str, Any]]) -> str:
    """The sign convention of the table's Δ, naming the error metrics it holds (lower is better)."""
    scores = [r for r in rows if r["kind"] == "score"]
    lower = list(dict.fromkeys(r["metric"] for r in scores if r["better"] == "lower"))
    zero = list(dict.fromkeys(r["metric"] for r in scores if r["better"] == "zero"))
    note = "a positive Δ means the comparison backbone scored higher, which is better"
    if lower:
        note += f" except for {', '.join(lower)} (errors: lower is better, so a negative Δ is an improvement)"
    if zero:
        note += f"; for {', '.join(zero)} closer to 0 is better, whatever the sign"
    return note + "."


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def run_comparison(
    cfg: Any, spec: str | None, compare: list[str], out_dir: str | Path, *, overwrite: bool = False
) -> Path:
    """Run the suite on `spec` (into OUT) and then on each of `compare` (into OUT/compare/<i>_<slug>/), and write
    OUT/comparison.md and OUT/comparison.json; returns the Markdown file's path.

    Every comparison spec is checked first without loading weights (`check_spec`: a bad option or a missing file
    stops before any run), then the main backbone is loaded once, checked against every task (a task it cannot run
    stops everything before any run) and run. A comparison backbone that cannot run a task (a four-layer head on a
    one-block baseline) skips it with a warning, and the comparison notes why. At most one backbone is in memory at
    a time: each is loaded, run and released (`release_backbones`) before the next loads, so the peak is the
    largest backbone rather than the main plus one.

    An `out_dir` holding an earlier probe's results (its own, compare/*/ or seed_*/ ones) is refused before any
    backbone loads unless `overwrite`, as `run_suite` refuses it (`probe_output.check_probe_output`)."""
    import copy

    from geodino.backbones.load import check_spec
    from geodino.errors import ConfigError
    from geodino.eval.probe_output import check_probe_output
    from geodino.eval.results import geodino_version
    from geodino.eval.runner import prepare_suite, read_results, release_backbones, run_prepared, run_suite

    main = spec or cfg.backbone
    if not main:
        raise ConfigError("no backbone: pass --backbone SPEC (a checkpoint, arch:vit_small, timm:<name>, ...)")
    out = Path(out_dir).expanduser()
    check_probe_output(out, overwrite=overwrite)  # covers the compare/ folders the runs below write
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
    for name in ("comparison.md", "comparison.json"):  # an earlier run's table must not outlive a failed rerun
        (out / name).unlink(missing_ok=True)
    rows: list[list[dict[str, Any]]] = [[] for _ in specs]
    _announce(cfg, 0, specs, folders)
    try:
        rows[0] = run_prepared(main_suite)
    except GeoDinoError as exc:  # one line saying that no comparison ran (and what OUT/compare/ holds)
        raise _main_failed(exc, specs, folders) from exc
    finally:
        release_backbones(main_suite)  # the main backbone is loaded once, and gone before a comparison loads
    skipped: dict[str, dict[str, str]] = {}
    failed: dict[str, BaseException] = {}
    for k in range(1, len(specs)):
        began = time.time()
        _announce(cfg, k, specs, folders)
        try:
            rows[k] = run_suite(copy.deepcopy(cfg), specs[k], folders[k], skip_unfit=True, overwrite=True)
            skipped[specs[k]] = dict(read_results(folders[k]).get("skipped") or {})
        except Exception as exc:  # one backbone failing keeps the others' runs and the table; raised at the end
            failed[specs[k]] = exc
            rows[k] = _partial_rows(folders[k], began)  # the tasks it finished before failing, if any
        finally:
            release_backbones()  # run_suite's backbones are unreferenced now; collect them before the next load
    runs = list(zip(specs, rows, strict=True))
    table = comparison_rows(runs)
    add_paired_tests(table, specs, folders)  # McNemar p per top-1 row, from each run's predictions.csv
    payload = {
        "suite": cfg.name,
        "seed": cfg.seed,
        "geodino_version": geodino_version(),
        "command": shlex.join(sys.argv),  # the command line of the process that wrote this file
        "backbones": specs,
        "folders": [str(f) for f in folders],
        "rows": table,
        "skipped": {s: t for s, t in skipped.items() if t},
        "failed": {s: _one_line(e) for s, e in failed.items()},
    }
    with atomic_path(out / "comparison.json") as tmp:
        tmp.write_text(json_text(payload, indent=1))
    md = out / "comparison.md"
    with atomic_path(md) as tmp:
        tmp.write_text(comparison_markdown(runs, cfg.name, skipped, payload["failed"], rows=table))
    if failed:
        spec0, exc0 = next(iter(failed.items()))
        more = f" (and {len(failed) - 1} more, listed there)" if len(failed) > 1 else ""
        error = ComparisonError(
            f"comparison backbone {spec0} failed: {_one_line(exc0)}{more}; the other backbones ran and {md} has "
            "their columns (the failed one's cells read -)"
        )
        error.exit_code = getattr(exc0, "exit_code", 1)
        raise error from exc0
    return md


def _announce(cfg: Any, k: int, specs: list[str], folders: list[Path]) -> None:
    """One stderr line before backbone `k`'s run (`probe: comparison 1/2 baseline:colour -> OUT/compare/1_...`):
    each run prints the same per-task lines (`image_folder/train: path ...`), which without it do not say which
    backbone they belong to. Printed with the progress output (the `progress` key), as those lines are."""
    if not getattr(cfg, "progress", True):
        return
    n = len(specs) - 1
    what = "main backbone" if k == 0 else f"comparison {k}/{n}"
    print(f"probe: {what} {specs[k]} -> {folders[k]}", file=sys.stderr, flush=True)


class ComparisonError(GeoDinoError):
    """A backbone of a comparison failed: a comparison backbone (the others ran and comparison.md was written) or
    the main one (no comparison ran); the message says which."""


def _main_failed(exc: GeoDinoError, specs: list[str], folders: list[Path]) -> ComparisonError:
    """The main backbone's error as one line that also says the comparisons did not run and no comparison.md was
    written, and that OUT/compare/ folders (from an earlier run) are not this run's; keeps the error's exit code."""
    n = len(specs) - 1
    line = (
        f"main backbone {specs[0]} failed: {_one_line(exc)}; the {n} comparison backbone{'s' if n > 1 else ''} "
        f"({', '.join(specs[1:])}) did not run and no comparison.md was written"
    )
    earlier = [f for f in folders[1:] if (f / "results.json").is_file()]
    if earlier:
        line += f" ({earlier[0].parent} holds an earlier run's results)"
    error = ComparisonError(line)
    error.exit_code = exc.exit_code
    return error


def _one_line(exc: BaseException) -> str:
    """A backbone's error on one line, its later lines folded in (cut at 300 characters): torch's "Error(s) in
    loading state_dict for X:" says what is missing on its next lines only."""
    return one_line(exc, 300)


def _partial_rows(folder: Path, began: float) -> list[dict[str, Any]]:
    """The rows a failed run wrote before failing (results.json is rewritten after each task), else none; a
    results.json older than this run (`began`, time.time()) is an earlier run's and is not read."""
    import json

    path = folder / "results.json"
    if not path.is_file() or path.stat().st_mtime < began:
        return []
    return list(json.loads(path.read_text()).get("rows") or [])
