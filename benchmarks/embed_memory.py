"""Part 2 of the feature-raster benchmark (run through `benchmarks/embed.py --only-rss`): peak RSS of `embed_raster`
on a large generated raster against a small one, each in a fresh process. That process is this module's own entry
point (`python benchmarks/embed_memory.py --rss-child SRC OUT SPEC TILE OVERLAP COMPILE BATCH`, as `rss` runs it;
`embed.py --rss-child` does the same), so that the child imports no more than the measured run needs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_cli import Parser

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embed_common import _force_compile, make_raster


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM of its address space.

    Not `getrusage().ru_maxrss`: Linux carries the parent's peak across fork + exec into it, so a child started
    by a parent that had just generated the 16k raster reported the parent's 1.4 GB (the 1.40 "ratio" of
    session 1 was this artefact).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(src: str, out: str, spec: str, tile: int, overlap: int, compile: str = "auto", batch: int = 8) -> None:
    """Run in a fresh process: embed, then print the peak RSS (MiB), the wall time, the inference path and the batch
    fill (tiles per forward, `Plan.batch_fill`) as JSON.

    `compile`: auto (the job-size rule: a 16k raster compiles, a 4k one does not), on or off (both sizes alike, so
    the ratio shows growth with the raster, not the compiler's fixed cost)."""
    import geodino.inference as inference
    from geodino.embed import embed_raster
    from geodino.embed.plan import Plan

    if compile != "auto":
        _force_compile(compile == "on")
    seen: dict = {}
    prepare, batch_fill = inference.prepare_embed, Plan.batch_fill

    def record(*a, **k):
        seen.update(prepare(*a, **k))
        return seen

    def record_fill(plan: Plan, batch_size: int) -> int:
        seen["fill"] = batch_fill(plan, batch_size)
        return seen["fill"]

    inference.prepare_embed = record
    Plan.batch_fill = record_fill
    t0 = time.perf_counter()
    embed_raster(
        src, spec, out, tile=tile, overlap=overlap, batch_size=batch, dtype="float16", overwrite=True, progress=False
    )
    peak = peak_rss_mib()
    row = {"peak_rss_mib": peak, "seconds": time.perf_counter() - t0, "path": seen.get("inference_path")}
    print(json.dumps({**row, "fill": seen.get("fill")}))


def rss(
    work: Path,
    sizes: tuple[int, int],
    spec: str,
    tile: int,
    overlap: int,
    formats: tuple[str, ...],
    compile: str,
    batches: tuple[int, ...] = (8,),
) -> list[dict]:
    """Peak RSS of one fresh process per (size, batch size, output format); rows are printed as they finish.

    The batch fill goes with each row: tile rows are batched on their own and balanced (`Plan.batch_fill`), so at
    batch size 8 a 4k raster (rows of 11 tiles) runs 6 tiles per forward and a 16k one (22 per column block) 8, a
    third more tiles and activations per forward that do not come from the raster's size. A batch size giving both
    the same fill (6 here) measures the growth with the raster alone."""

    rows = []
    for size in sizes:
        src = make_raster(work / f"gen{size}.tif", size)
        for batch in batches:
            for fmt in formats:
                out = work / f"rss{size}.{fmt}"
                cmd = [sys.executable, __file__, "--rss-child", str(src), str(out), spec, str(tile), str(overlap)]
                res = subprocess.run([*cmd, compile, str(batch)], capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    raise RuntimeError(f"rss child for {size} .{fmt} failed:\n{res.stderr[-2000:]}")
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row["size"], row["format"], row["batch"] = size, fmt, batch
                print(
                    f"| {size} x {size} | .{fmt} | {row['path']} | {batch} | {row['fill']} | "
                    f"{row['peak_rss_mib']:.0f} | {row['seconds']:.0f} |",
                    flush=True,
                )
                rows.append(row)
                if out.is_dir():
                    shutil.rmtree(out, ignore_errors=True)
                else:
                    out.unlink(missing_ok=True)
        src.unlink()
    return rows


def main(argv: list[str] | None = None) -> None:
    """The child entry point: `--rss-child SRC OUT SPEC TILE OVERLAP COMPILE BATCH` runs `rss_child` and prints its
    JSON row."""
    ap = Parser(description="the memory child of benchmarks/embed.py (part 2)")
    ap.add_argument(
        "--rss-child",
        nargs=7,
        required=True,
        metavar=("SRC", "OUT", "SPEC", "TILE", "OVERLAP", "COMPILE", "BATCH"),
        help="embed SRC to OUT in this process, then print peak RSS MiB, seconds, inference path and batch fill",
    )
    args = ap.parse_args(argv)
    src, out, spec, tile, overlap, compile, batch = args.rss_child
    rss_child(src, out, spec, int(tile), int(overlap), compile, int(batch))


if __name__ == "__main__":
    main()
