"""ONNX Runtime as a CPU inference path for geodino ViTs: exported graph vs torch eager, same weights, same input.

ONNX Runtime is a peer here, never a geodino dependency: install it into its own virtual environment and point
`--peer-site` at that environment's site-packages (appended to sys.path, so geodino's own packages win; without
it, and without onnxruntime importable, the script says so and exits 0, as `make benchmarks` runs every script):

    python3.11 -m venv /tmp/ortv && /tmp/ortv/bin/pip install onnxruntime onnx onnxscript
    .venv/bin/python benchmarks/onnxruntime_peer.py --peer-site /tmp/ortv/lib/python3.11/site-packages \\
        [--arch vit_small] [--batch 4] [--size 512] [--threads 2] [--rounds 2]

The model (random weights, seed 0, LayerScale 1.0 so that the blocks show in the output) is exported with torch's
dynamo ONNX exporter (patch tokens after the final norm, the features `geodino embed` writes), run with the
CPUExecutionProvider at the full graph optimisation level (`ORT_ENABLE_ALL`),
checked against eager (max abs difference printed), then eager and ONNX Runtime are timed in alternating rounds
(best of 3 per round). Printed: img/s of each and the ratio ONNX Runtime / eager per round.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def patch_token_model(arch: str):  # type: ignore[no-untyped-def]
    """The exported module: a random `arch` (seed 0) with LayerScale 1.0, returning its final-norm patch tokens.

    LayerScale 1.0 rather than the official 1e-5 so that the blocks show in the output: at 1e-5 a random ViT's
    tokens are its patch embedding's and the "max abs diff to eager" check could not see a wrong block."""
    import torch

    from geodino.models import build_model

    class PatchTokens(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.forward_features(x)["x_norm_patchtokens"]

    torch.manual_seed(0)
    return PatchTokens(build_model(arch, layerscale_init=1.0).eval()).eval()


def best_seconds(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    """Best wall time of `repeats` calls after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-site", default="", help="site-packages of a venv with onnxruntime, onnx, onnxscript")
    ap.add_argument("--arch", default="vit_small")
    ap.add_argument("--batch", type=positive, default=4)
    ap.add_argument("--size", type=positive, default=512)
    ap.add_argument("--threads", type=positive, default=2)
    ap.add_argument("--rounds", type=positive, default=2)
    args = ap.parse_args()
    if args.peer_site:
        sys.path.append(args.peer_site)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime_peer: skipped, onnxruntime is not importable (pass --peer-site; see the docstring)")
        return

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    net = patch_token_model(args.arch)
    x = torch.randn(args.batch, 3, args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        t0 = time.perf_counter()
        with torch.no_grad():
            torch.onnx.export(net, (x,), str(path), dynamo=True)
        export_s = time.perf_counter() - t0
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    feed = {name: x.numpy()}
    with torch.inference_mode():
        ref = net(x).numpy()
    diff = float(np.abs(sess.run(None, feed)[0] - ref).max())
    print(
        f"{args.arch}, batch {args.batch}, {args.size} px, {args.threads} threads; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}; export {export_s:.1f} s; max abs diff to eager {diff:.1e}"
    )
    print("| round | eager img/s | onnxruntime img/s | onnxruntime / eager |")
    print("|---|---|---|---|")
    for r in range(args.rounds):
        with torch.inference_mode():
            t_eager = best_seconds(lambda: net(x))
        t_ort = best_seconds(lambda: sess.run(None, feed))
        print(f"| {r + 1} | {args.batch / t_eager:.2f} | {args.batch / t_ort:.2f} | {t_eager / t_ort:.2f} |")


if __name__ == "__main__":
    main()
