"""A probe suite's results files: `results.json` (every row, the configs that made them, skipped tasks) and
`results.md` (the table people read), written atomically when a suite ends and read back by `--compare`.

Kept apart from the runner (`runner.py`, which re-exports these names) so that the file format, and which metrics
are bookkeeping rather than scores (`metric_kind`), have one home that `compare.py` and the runner share.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from geodino.errors import InputError
from geodino.io import atomic_path, json_text

if typing.TYPE_CHECKING:
    from geodino.eval.runner import SuiteConfig


INFO_METRICS = ("n_pixels", "val_tiles", "val_images", "train_loss")
"""Values a task returns beside its scores for bookkeeping (evaluated pixels, tiles or images; the last epoch's
training loss): kept in results.json with kind `info`, listed apart in results.md, never differenced by --compare."""


def metric_kind(metric: str) -> str:
    """`info` for bookkeeping values (INFO_METRICS), `score` for everything a probe reports as a result."""
    return "info" if metric in INFO_METRICS else "score"


def write_results(
    out: Path,
    cfg: SuiteConfig,
    spec: str,
    fingerprint: str,
    rows: list[dict],
    started: str,
    parsed: dict,
    skipped: dict[str, str],
) -> None:
    """results.json (rows, the configs that made them, skipped tasks) and results.md (the scores, then the
    bookkeeping rows, then the skipped tasks), both atomic."""
    from geodino.config import to_dict

    payload = {
        "suite": cfg.name,
        "backbone": spec,
        "fingerprint": fingerprint,
        "seed": cfg.seed,
        "started": started,
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
        return (
            f"| {r['task']} | {r['dataset']} | {r['metric']} | {r['value']:.4f} | `{r['backbone']}` | "
            f"`{r['config_hash']}` |"
        )

    lines = [
        f"# Probe results: {cfg.name}",
        "",
        f"Backbone `{spec}` (fingerprint `{fingerprint[:16]}`), seed {cfg.seed}, started {started}.",
        "",
        *table_head,
        *(line(r) for r in rows if r.get("kind") != "info"),
    ]
    info = [line(r) for r in rows if r.get("kind") == "info"]
    if info:
        lines += ["", "Run details (bookkeeping: counts and the last training loss, not scores):", "", *table_head]
        lines += info
    if skipped:
        lines += ["", "Skipped on this backbone:", ""] + [f"- {n}: {why}" for n, why in skipped.items()]
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def read_results(out_dir: str | Path) -> dict[str, Any]:
    """The results.json of a finished suite."""
    path = Path(out_dir) / "results.json"
    if not path.is_file():
        raise InputError(f"{path} not found; run `geodino probe` with --out {out_dir} first")
    return json.loads(path.read_text())
