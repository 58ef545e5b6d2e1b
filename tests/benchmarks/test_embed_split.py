"""benchmarks/embed.py split into part modules (embed_common, embed_paths, embed_memory, embed_seams): its command
line is what it was, the memory part's fresh processes start from their own module, and gpu.sh's import of
`make_raster` from `embed` still works."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import bench_module

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
# every flag of embed.py before the split (docs/, README.md and gpu.sh call several of them), and part 1's own
FLAGS = {
    "--quick", "--skip-rss", "--only-rss", "--backbone", "--seam-backbone", "--rss-backbone", "--rss-formats",
    "--rss-batches", "--fast-backbone", "--fast-size", "--fast-rounds", "--fast-batch", "--fast-modes", "--only-fast",
    "--only-pipeline", "--pipeline-size", "--pipeline-rounds", "--device-check", "--pipeline-device", "--read-threads",
    "--pipeline-dtype", "--rss-compile", "--rss-child", "--only-throughput", "--size", "--rounds",
}  # fmt: skip


def _flags(script: str) -> set[str]:
    tree = ast.parse((BENCH / script).read_text())
    return {
        n.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "add_argument" and n.args
    }


def _run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_benchmark_modules_stay_under_500_lines():
    """The project keeps modules under 500 lines; embed.py was 761."""
    long = {p.name: n for p in BENCH.glob("*.py") if (n := len(p.read_text().splitlines())) >= 500}
    assert not long, long


def test_embed_keeps_every_flag_and_its_help_runs():
    assert _flags("embed.py") == FLAGS
    p = _run(str(BENCH / "embed.py"), "--help", timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    for flag in FLAGS - {"--rss-child"}:  # --rss-child is hidden (argparse.SUPPRESS), as before
        assert flag in p.stdout, flag


def test_gpu_sh_imports_make_raster_from_embed(tmp_path):
    """gpu.sh and embed_versions.py do `sys.path.insert(0, 'benchmarks'); from embed import make_raster`."""
    code = f"import sys; sys.path.insert(0, 'benchmarks'); from embed import make_raster; make_raster(__import__('pathlib').Path({str(tmp_path / 'g.tif')!r}), 64)"  # noqa: E501
    p = _run("-c", code, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    import rasterio

    with rasterio.open(tmp_path / "g.tif") as ds:
        assert (ds.count, ds.height, ds.width, ds.dtypes[0]) == (3, 64, 64, "uint8")


@pytest.mark.slow  # fresh processes that import torch: ~10 s each on 2 cores
@pytest.mark.parametrize("script", ["embed_memory.py", "embed.py"])
def test_the_memory_child_runs_from_its_module_and_from_embed(tmp_path, script):
    """Part 2 starts `python benchmarks/embed_memory.py --rss-child ...` per raster (`rss`); `embed.py --rss-child`
    is kept. A 64 px raster (one 64 px tile) through a 1-block ViT-tiny: one JSON row with the peak RSS, time,
    inference path and batch fill."""
    make_raster = bench_module("embed_common").make_raster
    rss = bench_module("embed_memory").rss
    src = make_raster(tmp_path / "src.tif", 64)
    out = tmp_path / "out.zarr"
    p = _run(
        str(BENCH / script), "--rss-child", str(src), str(out), "arch:vit_tiny?seed=0&depth=1", "64", "16", "off", "2"
    )
    assert p.returncode == 0, p.stderr[-2000:]
    row = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(row) == {"peak_rss_mib", "seconds", "path", "fill"} and row["peak_rss_mib"] > 50 and row["fill"] >= 1
    assert out.exists()
    if script == "embed_memory.py":  # the function that starts the children, with its printed row
        rows = rss(tmp_path, (64, 128), "arch:vit_tiny?seed=0&depth=1", 64, 16, ("zarr",), "off", (2,))
        assert [(r["size"], r["format"], r["batch"]) for r in rows] == [(64, "zarr", 2), (128, "zarr", 2)]
