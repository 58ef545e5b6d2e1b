"""A probe into a folder that holds an earlier probe's results: refused unless `--overwrite` (`overwrite=True` in
Python).

A second probe into the same `--out` (another backbone, another suite, another seed) replaced the first one's
results.json/results.md, comparison and seeds tables without a word, so its numbers were lost; `embed`, `export`,
`convert`, `embed pca` and `viz attention` refuse an existing output unless `--overwrite`, and so does the probe.
One check for both entries: `run_suite`, `run_comparison` and `run_seeds` make it (the CLI passes `--overwrite` on
to them), so `geodino probe` and a Python run into the same folder are refused alike.
Only the result tables count: the feature cache (`OUT/feature_cache/`, keyed by everything that determines the
features) is never a reason to refuse and is kept by `--overwrite`, so a re-run of the same probe reads its
features from it instead of running the backbone again.
"""

from __future__ import annotations

from pathlib import Path

from geodino.errors import InputError

RESULT_FILES = ("results.json", "results.md", "comparison.json", "comparison.md", "seeds.json", "seeds.md")
"""The tables a probe run writes in OUT (`run_suite`, `--compare`, `--seeds`)."""


def earlier_results(out: Path) -> list[str]:
    """The result tables of an earlier probe in `out`, as paths relative to it: OUT's own, and those of its
    `--compare` runs (`compare/*/`) and `--seeds` runs (`seed_*/`, with their comparisons)."""
    if not out.is_dir():
        return []
    found = [out / name for name in RESULT_FILES]
    for pattern in ("compare/*/results.json", "seed_*/results.json", "seed_*/comparison.json"):
        found += sorted(out.glob(pattern))
    return [p.relative_to(out).as_posix() for p in found if p.is_file()]


def check_probe_output(out_dir: str | Path, *, overwrite: bool = False) -> None:
    """Refuse, in one line before any work, an `out_dir` holding an earlier probe's results unless `overwrite`
    (the feature cache alone is no reason: a re-run reads it). `overwrite` is read as the CLI and YAML read a flag
    ("false" is False)."""
    from geodino.config import true_or_false

    out = Path(out_dir).expanduser()
    found = [] if true_or_false(overwrite, "overwrite") else earlier_results(out)
    if not found:
        return
    shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    raise InputError(
        f"--out {out} (out_dir= in Python) already holds an earlier probe's results ({shown}); pass --overwrite "
        "(overwrite=True in Python) to replace them (its feature_cache/ is kept, so features computed before are read "
        "from it), or choose another --out folder"
    )
