"""A probe suite over several seeds (`geodino probe --seeds 0,1,2`): one run per seed, then mean and spread.

A single-seed probe number moves with the head's initialisation, the batch order, the seeded held-out tiles and
the training subset of a label budget (train_fraction/train_per_class: drawn by the seed, nested for one seed);
published EO protocols report several seeded runs (GEO-Bench: 12 seeds). `run_seeds` runs the suite (or the
`--compare` comparison) once per seed, each into `OUT/seed_<s>/` with its own results files, then writes
`OUT/seeds.md` and `OUT/seeds.json`: per task, metric and backbone the mean, the sample standard deviation (n - 1)
and the per-seed values; with comparison backbones also the paired difference to the main backbone, seed by seed
(the same seed, so the same held-out tiles and split), as its mean and sample standard deviation. Frozen features
are cached once for all seeds, in `OUT/feature_cache/` (unless `cache_dir` is set).
"""

from __future__ import annotations

import copy
import math
import shlex
import sys
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError
from geodino.io import atomic_path, json_text

SEEDS_FILES = ("seeds.md", "seeds.json")


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2]: distinct integers, at least two (one seed is a plain run); one line otherwise."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        seeds = [int(t) for t in items]
    except ValueError:
        raise ConfigError(f"--seeds {text!r} must be integers separated by commas, e.g. --seeds 0,1,2") from None
    if len(seeds) < 2:
        raise ConfigError(f"--seeds {text!r} names {len(seeds)} seed; give two or more (one seed: seed=N)")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} names a seed twice; give each once")
    return seeds


def mean_std(values: list[float | None]) -> tuple[float, float, int]:
    """(mean, sample standard deviation with n - 1, n) of the finite values (None, NaN left out); std is NaN for
    n < 2 and both are NaN for n = 0."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return math.nan, math.nan, 0
    m = math.fsum(v) / len(v)
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else math.nan
    return m, sd, len(v)


def aggregate(per_seed: dict[int, list[tuple[str, list[dict[str, Any]]]]]) -> list[dict[str, Any]]:
    """Rows over seeds from `per_seed`: seed -> [(spec, that run's results rows)], the main backbone first. One row
    per (task, metric) in the first seed's order: kind, better, per backbone its per-seed values (None where a seed
    lacks it) with mean/std/n, and per comparison backbone the paired Δ (comparison minus main, seed by seed)."""
    from geodino.eval.results import better, metric_kind

    seeds = list(per_seed)
    specs = [s for s, _ in per_seed[seeds[0]]]
    keys: list[tuple[str, str]] = []
    table: dict[tuple[str, str], dict[str, dict[int, float | None]]] = {}
    for seed, runs in per_seed.items():
        for spec, rows in runs:
            for r in rows:
                key = (str(r["task"]), str(r["metric"]))
                if key not in table:
                    keys.append(key)
                    table[key] = {s: {} for s in specs}
                table[key].setdefault(spec, {})[seed] = None if r["value"] is None else float(r["value"])
    out = []
    for t, m in keys:
        row: dict[str, Any] = {"task": t, "metric": m, "kind": metric_kind(m), "better": better(m), "backbones": {}}
        for spec in specs:
            vals = [table[(t, m)][spec].get(s) for s in seeds]
            mean, std, n = mean_std(vals)
            row["backbones"][spec] = {"values": vals, "mean": _num(mean), "std": _num(std), "n": n}
        main = [table[(t, m)][specs[0]].get(s) for s in seeds]
        row["delta"] = {}
        for spec in specs[1:]:
            other = [table[(t, m)][spec].get(s) for s in seeds]
            d = [None if a is None or b is None else b - a for a, b in zip(main, other, strict=True)]
            mean, std, n = mean_std(d)
            row["delta"][spec] = {"values": d, "mean": _num(mean), "std": _num(std), "n": n}
        out.append(row)
    return out


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _pm(cell: dict[str, Any], signed: bool = False) -> str:
    """`mean ± std` of an aggregate cell (`-` without values; the mean alone from one seed)."""
    if cell["mean"] is None:
        return "-"
    mean = f"{cell['mean']:+.4f}" if signed else f"{cell['mean']:.4f}"
    return mean if cell["std"] is None else f"{mean} ± {cell['std']:.4f}"


def seeds_markdown(
    rows: list[dict[str, Any]],
    suite: str,
    seeds: list[int],
    specs: list[str],
    skipped: dict[str, dict[str, str]] | None = None,
) -> str:
    """The table of `aggregate`'s score rows: mean ± sample std per backbone (and paired Δ per comparison), then
    a note per task a backbone skipped (`skipped`: spec -> {task: why}, from the runs' results.json), whose cells
    read "-", as each seed's comparison.md says."""
    from geodino.eval.compare import _sign_note

    head = ["task", "metric", f"`{specs[0]}`"] + [c for s in specs[1:] for c in (f"`{s}`", "Δ (paired)")]
    lines = [
        f"# Probe over seeds: {suite}",
        "",
        f"Seeds {', '.join(map(str, seeds))}: one run each (`seed_<s>/`, with its own results.md). Each cell is the "
        "mean ± the sample standard deviation (n - 1) over the seeds that gave a finite value; the per-seed values "
        "are in seeds.json. The seed sets the heads' initialisation, the batch order, seeded held-out tiles and the "
        "training subset a label budget (train_fraction/train_per_class) keeps; image-folder splits follow "
        "`data.split_seed`, not the seed.",
        "",
    ]
    if len(specs) > 1:
        lines += [
            f"Δ (paired) is the comparison minus `{specs[0]}` on the same seed, averaged over the seeds; "
            + _sign_note([{"kind": "score", "better": r["better"], "metric": r["metric"]} for r in rows]),
            "",
        ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in (r for r in rows if r["kind"] == "score"):
        cells = [r["task"], r["metric"], _pm(r["backbones"][specs[0]])]
        for s in specs[1:]:
            cells += [_pm(r["backbones"][s]), _pm(r["delta"][s], signed=True)]
        lines.append("| " + " | ".join(cells) + " |")
    short = [(r["task"], r["metric"], s) for r in rows if r["kind"] == "score" for s in specs
             if 0 < r["backbones"][s]["n"] < len(seeds)]  # fmt: skip
    if short:
        lines += ["", "Cells over fewer seeds than run (a NaN score or a task a seed did not finish):", ""]
        lines += [f"- {t} {m} `{s}`: {rows_n(rows, t, m, s)} of {len(seeds)}" for t, m, s in short]
    notes = [(s, task, why) for s in specs for task, why in (skipped or {}).get(s, {}).items()]
    if notes:
        lines += ["", 'Tasks a backbone skipped (their cells read "-"):', ""]
        lines += [f"- `{s}` skipped {task}: {why}" for s, task, why in notes]
    return "\n".join(lines) + "\n"


def rows_n(rows: list[dict[str, Any]], task: str, metric: str, spec: str) -> int:
    return next(r["backbones"][spec]["n"] for r in rows if r["task"] == task and r["metric"] == metric)


def run_seeds(
    cfg: Any, spec: str | None, compare: list[str], seeds: list[int], out_dir: str | Path, *, overwrite: bool = False
) -> Path:
    """Run the suite (`cfg`: a SuiteConfig or the suite YAML's mapping; with `compare`, the comparison) once per
    seed into OUT/seed_<s>/ and write OUT/seeds.md and OUT/seeds.json; returns the Markdown file's path. A failing
    seed stops the whole run (its error is raised) and no seeds table is written: a mean over the seeds that happened
    to finish would read as the full one. An `out_dir` holding an earlier probe's results is refused before any run
    unless `overwrite`, as `run_suite` refuses it (`probe_output.check_probe_output`)."""
    from geodino.eval.compare import COMPARE_DIR, run_comparison, slug
    from geodino.eval.probe_output import check_probe_output
    from geodino.eval.results import geodino_version, read_results
    from geodino.eval.runner import run_suite, suite_config
    from geodino.io import make_dirs

    cfg = suite_config(cfg)  # a SuiteConfig, or the suite YAML's mapping
    check_probe_output(out_dir, overwrite=overwrite)  # covers the seed_*/ folders the runs below write
    out = make_dirs(Path(out_dir).expanduser())
    for name in SEEDS_FILES:  # an earlier run's table must not outlive a failed rerun
        (out / name).unlink(missing_ok=True)
    main = str(spec or cfg.backbone)
    specs = [main] + [str(c) for c in compare]
    per_seed: dict[int, list[tuple[str, list[dict[str, Any]]]]] = {}
    skipped: dict[str, dict[str, str]] = {}  # spec -> {task: why} over the seeds (a skip depends on the backbone)
    for seed in seeds:
        run_cfg = copy.deepcopy(cfg)
        run_cfg.seed = seed
        # frozen features do not depend on the seed (the cache key is the backbone fingerprint, data and transform):
        # one cache for every seed, so a seed after the first extracts nothing again
        run_cfg.cache_dir = run_cfg.cache_dir or str(out / "feature_cache")
        folder = out / f"seed_{seed}"
        if compare:
            run_comparison(run_cfg, spec, compare, folder, overwrite=True)
            folders = [folder] + [folder / COMPARE_DIR / slug(c, i) for i, c in enumerate(specs[1:], 1)]
        else:
            run_suite(run_cfg, spec, folder, overwrite=True)
            folders = [folder]
        results = [read_results(f) for f in folders]
        per_seed[seed] = [(s, list(r.get("rows") or [])) for s, r in zip(specs, results, strict=True)]
        for s, r in zip(specs, results, strict=True):
            for task, why in (r.get("skipped") or {}).items():
                skipped.setdefault(s, {}).setdefault(str(task), str(why))
    rows = aggregate(per_seed)
    payload = {
        "suite": cfg.name,
        "seeds": seeds,
        "backbones": specs,
        "folders": {str(s): str(out / f"seed_{s}") for s in seeds},
        "geodino_version": geodino_version(),
        "command": shlex.join(sys.argv),
        "rows": rows,
        "skipped": skipped,
    }
    with atomic_path(out / "seeds.json") as tmp:
        tmp.write_text(json_text(payload, indent=1))
    md = out / "seeds.md"
    with atomic_path(md) as tmp:
        tmp.write_text(seeds_markdown(rows, cfg.name, seeds, specs, skipped))
    return md
