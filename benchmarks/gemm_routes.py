"""Float32 GEMM routes on a CPU with AMX / AVX-512 BF16: plain float32 (MKL) against "3xBF16".

3xBF16 is the CPU analogue of the 3xTF32 products the GPU fast path uses: each float32 operand is split into a
bf16 high part and a bf16 low part, and x·w is computed as hi·hi + hi·lo + lo·hi with float32 accumulation (one
GEMM over a tripled inner dimension, run by oneDNN with `torch.backends.mkldnn.matmul.fp32_precision = "bf16"`,
which keeps float32 outputs). bf16 products run several times faster than float32 on AMX, so the question is
whether three of them, plus the split, beat one float32 product at the fast path's shapes, and at what error.

Printed per shape (ViT-L/16 and ViT-S/16 projections at 224 px): GFLOP/s of each route, the GEMM alone with
pre-split inputs, the speed-up over float32 and the largest error of each against a float64 product.

    .venv/bin/python benchmarks/gemm_routes.py [--threads 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_cli import Parser, positive

# (tokens, in, out): ViT-L/16 batch 2 (qkv, fc1, fc2) and ViT-S/16 batch 16 (qkv, fc2), 201 tokens per image
SHAPES = [(402, 1024, 3072), (402, 1024, 4096), (402, 4096, 1024), (3216, 384, 1152), (3216, 1536, 384)]


def timed(fn, repeats: int) -> float:
    """Mean seconds per call after three warm-up calls (the routes are timed back to back)."""
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def row(m: int, k: int, n: int, repeats: int) -> str:
    """One table row: both routes at tokens m, inner k, outputs n."""
    mm = torch.backends.mkldnn.matmul
    x, w = torch.randn(m, k), torch.randn(n, k) * 0.03
    ref = x.double() @ w.double().T
    flop = 2 * m * k * n
    t32 = timed(lambda: x @ w.T, repeats)
    e32 = (x @ w.T - ref).abs().max().item()
    w_hi = w.bfloat16().float()
    w3 = torch.cat([w_hi, (w - w_hi).bfloat16().float(), w_hi], 1)

    def three() -> torch.Tensor:
        x_hi = x.bfloat16().float()
        return torch.cat([x_hi, x_hi, x - x_hi], 1) @ w3.T

    x3 = torch.cat([x.bfloat16().float()] * 3, 1)
    mm.fp32_precision = "bf16"
    try:
        e3 = (three() - ref).abs().max().item()
        t3 = timed(three, repeats)
        tg = timed(lambda: x3 @ w3.T, repeats)
    finally:
        mm.fp32_precision = "ieee"
    return (
        f"| {m} x {k} x {n} | {flop / t32 / 1e9:.0f} | {flop / t3 / 1e9:.0f} | {flop / tg / 1e9:.0f} | "
        f"{t32 / t3:.2f} | {e32:.1e} | {e3:.1e} |"
    )


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=positive, default=2)
    ap.add_argument("--repeats", type=positive, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads")
    print(
        "| tokens x in x out | float32 GFLOP/s | 3xBF16 GFLOP/s (with split) | 3xBF16 GEMM only | 3xBF16 / float32 |"
        " float32 max err | 3xBF16 max err |"
    )
    print("|---|---|---|---|---|---|---|")
    for m, k, n in SHAPES:
        print(row(m, k, n, args.repeats))


if __name__ == "__main__":
    main()
