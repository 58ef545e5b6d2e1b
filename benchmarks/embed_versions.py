"""`geodino embed` end to end, one revision against another: the same raster, settings and machine, fresh
processes alternating round by round (the baseline runs first in each round).

Issue 15 asks for feature-raster px/s ">= 1.2x today's": today's is the code as it stood when the issue was filed,
before the fast path (commit 68512c4, the default baseline). This script measures exactly that, without reading
"today's" from an old table: it checks the baseline revision out into a temporary git worktree, and each round
runs one child process per revision (the baseline on PYTHONPATH, or this checkout) that embeds the raster once with
the revision's defaults, as `geodino embed` would. Each child reports its wall time (import and backbone loading
excluded, any compile warm-up included), its minor page faults and system CPU seconds (robust on a shared VM where
wall time drifts), and the inference path its output records.

    .venv/bin/python benchmarks/embed_versions.py [--baseline 68512c4] [--candidate WORKTREE|REV] [--size 3072]
        [--backbone arch:vit_small?seed=0] [--batch 8] [--rounds 3]

Needs the repository's git history (a fresh clone has it) and the candidate's dependencies in this interpreter; a
baseline that needs other packages fails in its child, with its error. Run beside nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
BASELINE = "68512c4"  # the last commit before the fast path (08453a1): "today's" in issue 15


def _proc_counts() -> tuple[int, float]:
    """(minor page faults, system CPU seconds) of this process so far, from /proc/self/stat."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[12]) / os.sysconf("SC_CLK_TCK")


def child(src: str, out: str, backbone: str, tile: int, overlap: int, batch: int) -> None:
    """Embed once with the geodino found on sys.path; print one JSON line."""
    import geodino
    from geodino.embed import embed_raster

    faults0, sys0 = _proc_counts()
    t0 = time.perf_counter()
    embed_raster(src, backbone, out, tile=tile, overlap=overlap, batch_size=batch, overwrite=True, progress=False)
    seconds = time.perf_counter() - t0
    faults1, sys1 = _proc_counts()
    path = None  # the path the run recorded in the output's metadata (older revisions record none)
    for meta in sorted(Path(out).rglob("*")):
        if meta.name in (".zattrs", "zarr.json"):
            path = path or re.search(r'"inference_path":\s*"([^"]+)"', meta.read_text())
    row = {"seconds": seconds, "faults": faults1 - faults0, "sys_s": sys1 - sys0, "package": geodino.__file__}
    print(json.dumps({**row, "path": path.group(1) if path else "eager (no fast path)"}))


def _tree(rev: str, tmp: Path) -> tuple[Path, bool]:
    """(source tree, made here) for a revision: this checkout for 'WORKTREE', else a detached git worktree."""
    if rev == "WORKTREE":
        return REPO, False
    where = tmp / f"rev-{rev.replace('/', '_')}"
    res = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(where), rev], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(f"embed_versions: cannot check out revision {rev!r}: {res.stderr.strip()}")
    return where, True


def _run_child(tree: Path, src: Path, out: Path, args: argparse.Namespace, extra_env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-W", "ignore", __file__, "--child", str(src), str(out), args.backbone]
    cmd += [str(args.tile), str(args.overlap), str(args.batch)]
    env = {**os.environ, **extra_env, "PYTHONPATH": str(tree)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if res.returncode != 0:
        raise SystemExit(f"embed_versions: the child for {tree} failed:\n{res.stderr[-3000:]}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    if not Path(row["package"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"embed_versions: the child imported {row['package']}, not the tree {tree}")
    return row


def main() -> None:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision to compare against (default {BASELINE})")
    ap.add_argument("--candidate", default="WORKTREE", help="git revision, or WORKTREE for this checkout (default)")
    ap.add_argument("--size", type=positive, default=3072, help="side of the generated uint8 raster (3072: 64 tiles)")
    ap.add_argument("--backbone", default="arch:vit_small?seed=0")
    ap.add_argument("--tile", type=positive, default=512)
    ap.add_argument("--overlap", type=int, default=128)
    ap.add_argument("--batch", type=positive, default=8, help="batch size (default 8, as geodino embed)")
    ap.add_argument("--rounds", type=positive, default=3)
    ap.add_argument(
        "--candidate-env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the candidate's runs only, e.g. GEODINO_FAST=0 (its eager path, to split a gain between "
        "the fast path and the rest of the pipeline)",
    )
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    bad = [kv for kv in args.candidate_env if "=" not in kv]
    if bad:
        ap.error(f"--candidate-env {bad[0]!r} is not KEY=VALUE")
    cand_env = dict(kv.split("=", 1) for kv in args.candidate_env)
    if args.child:
        src, out, backbone, tile, overlap, batch = args.child
        child(src, out, backbone, int(tile), int(overlap), int(batch))
        return

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from embed import make_raster  # the generated scene of benchmarks/embed.py

    with tempfile.TemporaryDirectory(prefix="geodino-versions-") as tmp:
        work = Path(tmp)
        trees, made = {}, []
        try:
            for name, rev in (("baseline", args.baseline), ("candidate", args.candidate)):
                trees[name], new = _tree(rev, work)
                if new:
                    made.append(trees[name])
            src = make_raster(work / "scene.tif", args.size)
            print(
                f"## geodino embed end to end: {args.candidate}{''.join(' ' + kv for kv in args.candidate_env)} vs "
                f"{args.baseline} ({args.size}^2 generated uint8 "
                f"raster, {args.backbone}, tile {args.tile}, overlap {args.overlap}, batch {args.batch}, .zarr, "
                f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f})\n"
            )
            print(
                "| round | baseline s | candidate s | candidate / baseline px/s | minor faults, baseline / candidate "
                "| system CPU s, baseline / candidate |"
            )
            print("|---|---|---|---|---|---|", flush=True)
            ratios, paths = [], {}
            for r in range(1, args.rounds + 1):
                rows = {}
                for name in ("baseline", "candidate"):
                    env = cand_env if name == "candidate" else {}
                    rows[name] = _run_child(trees[name], src, work / f"out_{name}.zarr", args, env)
                    paths[name] = rows[name]["path"]
                b, c = rows["baseline"], rows["candidate"]
                ratios.append(b["seconds"] / c["seconds"])
                print(
                    f"| {r} | {b['seconds']:.1f} | {c['seconds']:.1f} | {ratios[-1]:.2f} | {b['faults']:,} / "
                    f"{c['faults']:,} | {b['sys_s']:.1f} / {c['sys_s']:.1f} |",
                    flush=True,
                )
            print(f"\ninference path: baseline {paths['baseline']}, candidate {paths['candidate']}")
            print(f"candidate / baseline px/s: median {statistics.median(ratios):.2f} over {args.rounds} rounds")
        finally:
            for tree in made:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
