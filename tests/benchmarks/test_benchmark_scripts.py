"""The benchmark scripts as `make benchmarks` and a reader of their tables meet them: a bare run of every script
exits 0 (a script that needs an argument says so and skips), a ratio against a peer comes with the peer's version,
and a printed ratio is the quotient of the numbers measured in the same run."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import bench_module

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def _run(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


@pytest.mark.parametrize("script", ["curate_evidence.py", "peer_lightly_train.py"])
def test_a_bare_run_of_a_script_that_needs_arguments_skips_with_exit_0(script):
    """`make benchmarks` runs `python benchmarks/X.py || exit 1` for every script; these two had required arguments,
    so argparse exited 2 and the target stopped at curate_evidence.py (the fourth script)."""
    p = _run(script)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "skipped" in p.stdout and "--" in p.stdout  # names what it needs


# every speed benchmark that compares with a peer package, and the peers its first line must name with versions
PEERS = {
    "backbone.py": ("transformers", "timm"),
    "profile_forward.py": ("transformers", "timm"),
    "train_step.py": ("lightly",),
    "readers.py": ("rasterio", "torchgeo"),
}


@pytest.mark.parametrize("script", sorted(PEERS))
def test_speed_benchmarks_print_the_versions_of_their_peers(script):
    """The table's ratio is against a peer; the script prints `versions(...)` naming each peer it runs."""
    tree = ast.parse((BENCH / script).read_text())
    named = {
        a.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "versions"
        for a in node.args
        if isinstance(a, ast.Constant)
    }
    assert set(PEERS[script]) <= named, f"{script} prints versions of {sorted(named)}"


def test_versions_reads_installed_distributions():
    versions = bench_module("versions").versions
    line = versions("timm", "no-such-package-xyz")
    assert line == f"timm {importlib.metadata.version('timm')}, no-such-package-xyz not installed"


@pytest.mark.slow
def test_backbone_benchmark_names_its_peers_and_prints_ratios_of_its_own_numbers():
    """A tiny run of benchmarks/backbone.py (32 px, batch 1, one repeat, eager rows only): the first line names
    transformers and timm with their installed versions, and each ratio column is the quotient of the img/s columns
    printed beside it (to the rounding of the printed values)."""
    p = _run(
        "backbone.py", "--archs", "vit_small", "--batch", "1", "--size", "32", "--repeats", "1", "--no-fast",
        "--dtypes", "fp32", "--threads", "1", timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.splitlines()
    for peer in ("transformers", "timm"):
        assert f"{peer} {importlib.metadata.version(peer)}" in lines[0]
    row = next(line for line in lines if line.startswith("| vit_small"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    geo, hf, tm, r_hf, r_tm = (float(c) for c in cells[2:7])
    for ratio, num, den in ((r_hf, geo, hf), (r_tm, geo, tm)):
        lo, hi = (num - 0.005) / (den + 0.005), (num + 0.005) / max(den - 0.005, 1e-9)
        assert lo - 0.005 <= ratio <= hi + 0.005, (ratio, num, den)
    assert re.search(r"outputs agree within \d", p.stdout)


def test_readers_header_names_what_each_column_times():
    """readers.py's docstring said the geodino column was `RasterArchive.sample` and torchgeo read "the same
    windows"; the code times `RasterArchive.read` for that column (`sample` is "+ reflectance") and torchgeo on the
    first 200 windows, after the interleaved passes."""
    src = (BENCH / "readers.py").read_text()
    doc = ast.get_docstring(ast.parse(src))
    part_a = doc.split("(b)")[0]
    assert '"geodino": lambda i, c, r: archive.read(' in src
    assert part_a.index("RasterArchive.read") < part_a.index("RasterArchive.sample")
    assert "n = min(len(wins), 200)" in src and "first 200" in part_a


def _default(script: str, flag: str) -> str:
    """The argparse default of `flag` in a benchmark script, read from its source (nothing imported or run)."""
    for node in ast.walk(ast.parse((BENCH / script).read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            if node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == flag:
                return next(k.value.value for k in node.keywords if k.arg == "default")
    raise AssertionError(f"{script} has no {flag}")


def test_probe_features_default_backbone_tells_images_apart():
    """probe_features.py prints the lowest CLS cosine of each fast path to eager; with the default random ViT-S at
    the official LayerScale init (1e-5) every image had the same CLS (cosine 1.0 between different images), so the
    column read 1.00000 whatever a path computed. The default backbone's CLS must differ between images."""
    import torch

    from geodino.backbones import load_backbone

    bb = load_backbone(_default("probe_features.py", "--backbone"))
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        cls = bb.features(bb.normalize(x), layers="last")[1][0]
    cos = torch.nn.functional.cosine_similarity(cls[:1], cls[1:], dim=-1)
    assert cos.max().item() < 0.99, cos


def _backbone_spec_in(script: str, function: str) -> str:
    """The literal spec passed to `load_backbone` inside `function` of a benchmark script."""
    tree = ast.parse((BENCH / script).read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    call = next(n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "load_backbone")
    return call.args[0].value


def test_embed_device_check_backbone_lets_the_blocks_show():
    """embed.py's device check (in embed_paths.py; the GPU sweep vs the CPU sweep: max difference, lowest cell
    cosine) used a random ViT-S at LayerScale 1e-5, whose patch tokens are the patch embedding's: a wrong attention
    or MLP on the device would have changed them by ~1e-5 and passed. With its backbone, dropping every block must
    change the tokens."""
    import torch

    from geodino.backbones import load_backbone

    model = load_backbone(_backbone_spec_in("embed_paths.py", "device_check")).model.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = model.forward_features(x)["x_norm_patchtokens"]
        model.blocks = torch.nn.ModuleList()
        bare = model.forward_features(x)["x_norm_patchtokens"]
    cos = torch.nn.functional.cosine_similarity(full, bare, dim=-1)
    assert cos.mean().item() < 0.99, cos.mean()


def test_onnxruntime_peer_model_lets_the_blocks_show():
    """onnxruntime_peer.py checks ONNX Runtime against eager by the max abs difference of the patch tokens; on a
    random ViT at LayerScale 1e-5 those are the patch embedding's, so a wrongly exported block would have passed.
    Its model must change when the blocks are dropped."""
    import torch

    patch_token_model = bench_module("onnxruntime_peer").patch_token_model
    net = patch_token_model("vit_small")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = net(x)
        net.m.blocks = torch.nn.ModuleList()
        bare = net(x)
    assert torch.nn.functional.cosine_similarity(full, bare, dim=-1).mean().item() < 0.99


def test_fast_fidelity_header_names_its_default_run():
    """fast_fidelity.py's docstring gave `/work/main/runs/bench_pq_rerun/geodino` as the default run; the code reads
    `runs/bench_pretrain_quality/geodino` (pretrain_quality.py's default --out), so a reader who ran that script
    looked for the wrong folder."""
    src = (BENCH / "fast_fidelity.py").read_text()
    doc = ast.get_docstring(ast.parse(src))
    assert '"runs" / "bench_pretrain_quality" / "geodino"' in src
    assert _default("pretrain_quality.py", "--out") == "runs/bench_pretrain_quality"
    assert "`runs/bench_pretrain_quality/geodino`" in doc and "bench_pq_rerun" not in doc


@pytest.mark.slow
def test_distill_teacher_smoke_run_prints_ratios_of_its_own_medians():
    """distill_teacher.py had no crop-size flags: its smallest run (ViT-T teacher and student, batch 1, 2x224 + 8x96
    crops) ran past 4 minutes on this busy 2-core machine. --global-size / --local-size make a smoke run of seconds;
    each bold ratio is eager / fast of the medians printed beside it."""
    p = _run(
        "distill_teacher.py", "--teacher", "vit_tiny", "--student", "vit_tiny", "--batch", "1", "--repeats", "1",
        "--prototypes", "64", "--global-size", "32", "--local-size", "16", "--threads", "1", timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "2 x 32 global + 8 x 16 local crops" in p.stdout
    rows = [line for line in p.stdout.splitlines() if line.startswith(("| 32-true", "| bf16-mixed"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for pair, ratio in ((cells[3], cells[4]), (cells[5], cells[6]), (cells[7], cells[8])):
            e, f = (float(v) for v in pair.split("/"))
            r = float(ratio.strip("*"))
            lo, hi = (e - 0.005) / (f + 0.005), (e + 0.005) / max(f - 0.005, 1e-9)
            assert lo - 0.005 <= r <= hi + 0.005, (pair, ratio)
        assert float(cells[9]) < 1e-2  # the fast teacher's CLS logits agree with eager


def test_recipe_sweep_table_marks_variants_of_earlier_runs_with_their_steps():
    """recipe_sweep.py keeps results.json across invocations and printed every stored variant in one table without a
    step count: `--steps 50 --variants base` after a 300-step sweep showed base@50 beside plain@300 as if side by
    side. Each row now carries its steps, and a variant this invocation did not train is marked."""
    table = bench_module("recipe_sweep").table
    loss = {"first": 9.0, "end": 8.0}
    results = {
        "colour": {"knn": 80.0, "logreg": 85.0},
        "plain": {"knn": 70.0, "logreg": 75.0, "steps": 300, "wall_s": 600.0, "loss": loss},
        "base": {"knn": 60.0, "logreg": 65.0, "steps": 50, "wall_s": 60.0, "loss": loss},
    }
    lines = table(results, ["base"])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert rows["plain (earlier run)"][1] == "300"
    assert rows["base"][1] == "50" and rows["base"][2] == "60.0"
    assert "plain" not in rows
