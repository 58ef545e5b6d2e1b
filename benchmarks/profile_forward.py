"""Where the float32 backbone forward spends its time, and how close it runs to this CPU's matmul peak.

1. The sgemm (and bf16 gemm) peak of this machine at the chosen thread count: a large square `torch.mm`, best of a
   few repeats, FLOP/s = 2 n^3 / s.
2. `torch.profiler` over forwards of ViT-S/16 (batch 16, 224 px by default) for the geodino eager model, the fast
   path (prepared weights, eager and compiled; the compile runs before profiling) and the transformers / timm
   models on the same weights (`backbone.build_trio`).
   Self CPU time is grouped into GEMMs (addmm / mm / bmm / linear / matmul / conv), attention (SDPA and its
   kernels) and everything else (norms, GELU, adds, copies, RoPE), and the forward's matmul FLOPs (counted from
   the shapes) give the achieved GFLOP/s of the GEMMs alone and of the whole forward.

    .venv/bin/python benchmarks/profile_forward.py [--arch vit_small] [--batch 16] [--size 224] [--threads 2]

Shares answer "is there room for 1.2x at float32 numerics": a forward that is already >= 80 % GEMM at the sgemm
peak cannot get 1.2x faster without changing the matmul numerics (bf16 / int8).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

GEMM = {"addmm", "mm", "bmm", "linear", "matmul", "baddbmm", "_addmm_activation"}
ATTN = ("scaled_dot_product", "flash_attention", "_efficient_attention", "attention")


def mm_peak(n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matmul in `dtype` (best of `repeats`)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def vit_flops(model, batch: int, size: int) -> tuple[float, float]:
    """(linear-layer FLOPs, attention-matmul FLOPs) of one forward, counted from the shapes (2 per MAC)."""
    p = model.patch_size
    n = (size // p) ** 2 + model.n_prefix_tokens
    d = model.embed_dim
    lin = 2 * batch * (size // p) ** 2 * d * model.in_chans * p * p  # patch embedding
    for blk in model.blocks:
        for m in blk.modules():
            if isinstance(m, torch.nn.Linear):
                lin += 2 * batch * n * m.in_features * m.out_features
    att = len(model.blocks) * 2 * (2 * batch * n * n * d)  # q k^T and attn v over all heads
    return lin, att


def group(key: str) -> str:
    """'gemm', 'attention' or 'other' for a profiler op name (self time, so nested ops are not counted twice)."""
    k = key.lower().split("::")[-1]
    if k.startswith(("graph_", "## call")):  # inductor's fused element-wise kernels (RoPE, norms, GELU, adds)
        return "other"
    if any(a in k for a in ATTN):
        return "attention"
    if k in GEMM or k.startswith(("mkldnn_", "_mkldnn", "mkl_linear", "_mkl")) or "conv" in k:  # mkl: frozen
        return "gemm"
    return "other"


def profile(fn, repeats: int) -> tuple[dict[str, float], float, list[tuple[str, float]]]:
    """Self-CPU seconds per group over `repeats` forwards, wall seconds per forward, top ops."""
    from torch.profiler import profile as tprofile

    from geodino.train.profiling import activities

    fn()
    with tprofile(activities=activities(on_cuda=False)) as prof:  # host ops; quiets kineto's GPU lookup on a CPU
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        wall = (time.perf_counter() - t0) / repeats
    shares: dict[str, float] = {"gemm": 0.0, "attention": 0.0, "other": 0.0}
    top = []
    for ev in prof.key_averages():
        s = ev.self_cpu_time_total / 1e6 / repeats
        if s <= 0:
            continue
        shares[group(ev.key)] += s
        top.append((ev.key, s))
    top.sort(key=lambda kv: -kv[1])
    return shares, wall, top[:8]


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="vit_small")
    ap.add_argument("--batch", type=positive, default=16)
    ap.add_argument("--size", type=positive, default=224)
    ap.add_argument("--threads", type=positive, default=2)
    ap.add_argument("--repeats", type=positive, default=3)
    ap.add_argument("--mm", type=positive, default=2048, help="size of the square matmul measuring the peak")
    ap.add_argument("--top", action="store_true", help="print the 8 most expensive ops of each model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from backbone import build_trio

    from geodino.models.frozen import FastPath, FastViT

    with torch.inference_mode():
        peak32 = mm_peak(args.mm, torch.float32)
        peak16 = mm_peak(args.mm, torch.bfloat16)
    from versions import versions

    print(f"{versions('torch', 'transformers', 'timm')}; {args.threads} threads; load average {os.getloadavg()[0]:.2f}")
    print(f"matmul peak ({args.mm}^3): float32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s\n")
    geo, hf, tm = build_trio(args.arch)
    fast = FastViT(geo, FastPath(True, "float32"))
    fast_c = FastViT(geo, FastPath(True, "float32", compile=True))
    x = torch.randn(args.batch, 3, args.size, args.size)
    lin, att = vit_flops(geo, args.batch, args.size)
    total = lin + att
    print(
        f"{args.arch}, batch {args.batch}, {args.size} px: {total / args.batch / 1e9:.2f} GFLOP per image "
        f"({lin / total:.0%} linear layers, {att / total:.0%} attention matmuls); "
        f"at the sgemm peak: {peak32 * 1e9 / (total / args.batch):.1f} img/s\n"
    )
    models = {
        "geodino eager": lambda: geo.forward_features(x),
        "fast float32 (prepared, eager)": lambda: fast.forward_features(x),
        "fast float32 (compiled, frozen weights)": lambda: fast_c.forward_features(x),
        "transformers": lambda: hf(pixel_values=x),
        "timm": lambda: tm.forward_features(x),
    }
    print(
        "| model | img/s | GEMM share | attention share | other share | GEMM GFLOP/s (of peak) | "
        "forward GFLOP/s (of peak) |"
    )
    print("|---|---|---|---|---|---|---|")
    tops = {}
    with torch.inference_mode():
        for name, fn in models.items():
            shares, wall, top = profile(fn, args.repeats)
            tops[name] = top
            tot = sum(shares.values())
            gemm_rate = lin / shares["gemm"] / 1e9 if shares["gemm"] else 0.0
            fwd_rate = total / wall / 1e9
            print(
                f"| {name} | {args.batch / wall:.1f} | {shares['gemm'] / tot:.0%} | {shares['attention'] / tot:.0%} | "
                f"{shares['other'] / tot:.0%} | {gemm_rate:.0f} ({gemm_rate / peak32:.0%}) | "
                f"{fwd_rate:.0f} ({fwd_rate / peak32:.0%}) |",
                flush=True,
            )
    if args.top:
        for name, top in tops.items():
            print(f"\n{name}: " + ", ".join(f"{k} {s * 1e3:.0f} ms" for k, s in top))


if __name__ == "__main__":
    main()
