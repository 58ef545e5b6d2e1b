"""Backbone forward speed: geodino vs transformers DINOv3ViTModel vs timm Eva, on the same weights.

For each architecture (vit_small, vit_base) one geodino model is built, its weights converted to the HF and timm
layouts and loaded into `DINOv3ViTModel` and timm's `vit_*_patch16_dinov3_qkvb`; outputs are checked to agree,
then the three forwards run interleaved (round-robin, so load on the machine hits all three alike) at batch 16,
224 px, in float32 and under bfloat16 autocast, with a fixed thread count. Printed: images/s (median of the
repeats) and the ratios geodino / transformers and geodino / timm (eager geodino; DESIGN's >= 1.2 target is the
`fast/best` column).

Fast-path rows (`geodino.models.frozen.FastViT`, unless `--no-fast`): float32 rows add the fast path in float32,
bf16 rows the fast path with bf16 weights (no autocast), both compiled with torch.compile unless `--no-compile`;
the compile warm-up runs before the timed repeats and is printed separately. `fast/best` is the fast path over the
best of transformers and timm in the same run (issue 15 target >= 1.2); `cos` is the lowest per-token cosine of
its patch tokens to eager float32 and `max diff` their largest absolute difference (the float32 paths keep it
under 1e-4). The fast path is the one `geodino.models.frozen.choose_path` picks for the row's dtype on the device:
on a CUDA GPU with TF32 tensor cores the float32 row runs its projections as 3xTF32; `--dtypes fp32-ieee` adds a
row with plain float32 products there (the same as `fp32` on a CPU). On a CPU the float32 row runs the
projections through oneDNN with the GELU fused (`fast-float32-onednn`); `--dtypes fp32-mkl` adds a row with the MKL
products inductor packs by itself (the CPU route before oneDNN). `--int8` adds the opt-in int8 row (eager,
compared with float32).

`--dtypes bf16-weights` adds a bf16 row where every model holds bf16 weights and takes a bf16 input, without
autocast (what `from_pretrained(..., torch_dtype=torch.bfloat16)` or `model.to(torch.bfloat16)` gives a user of
transformers or timm; norms and softmax then run in bf16 too, less accurate than the fast path, which keeps the
residual stream and norms in float32). The `bf16` row's peers run under autocast, which casts the float32 weights on
every call: `bf16-weights` is the fairer speed comparison for the fast path's bf16 weights. The last column gives,
for each ratio, its smallest and largest value over the repeats (each taken within one repeat, so both sides saw
the same load): a range wider than the gap to the target means the median is not settled.

`--compile-peers` adds transformers and timm each behind a plain `torch.compile(model)` (the one line a user of
those libraries would add; same dtype handling as their eager rows) and `fast/best compiled`: the fast path over the
better of those two. The issue-15 target is against the eager libraries; this column says how much of the lead is
compilation that a peer could also have.

    .venv/bin/python benchmarks/backbone.py [--archs vit_small vit_base] [--batch 16] [--size 224] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import traceback
from collections.abc import Iterator

from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch


def build_trio(arch: str):
    """(geodino, HF, timm) models with identical weights, in eval mode."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    from geodino.models import build_model
    from geodino.models.checkpoints.hf import hf_config_from_official, official_to_hf
    from geodino.models.checkpoints.timm import official_to_timm, timm_model_for

    torch.manual_seed(0)
    geo = build_model(arch).eval()
    with torch.no_grad():  # trained-like LayerScale and biases so that every branch matters
        for name, p in geo.named_parameters():
            if name.endswith(("gamma", "bias")):
                p.normal_(0, 0.2)
    state = geo.state_dict()
    hf_cfg = hf_config_from_official(geo.config, state)
    hf_cfg = {k: v for k, v in hf_cfg.items() if k not in ("architectures", "model_type")}
    hf = DINOv3ViTModel(DINOv3ViTConfig(**hf_cfg)).eval()
    hf_state = {("model." + k if k.startswith("layer.") else k): v for k, v in official_to_hf(state).items()}
    hf.load_state_dict(hf_state, strict=True)
    tm = timm_model_for(geo.config, qkv_bias=True, dynamic_img_size=True).eval()
    tm.load_state_dict(official_to_timm(state, qkv_bias=True), strict=True)
    return geo, hf, tm


AGREE = 1e-3
"""Largest float32 difference allowed between the three models' tokens before timing (they agree within ~1e-5)."""


def check_agree(geo, hf, tm, x) -> float:
    with torch.no_grad():
        out = geo.forward_features(x)
        g = torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], 1)
        h = hf(pixel_values=x).last_hidden_state
        t = tm.forward_features(x)
    return max((g - h).abs().max().item(), (g - t).abs().max().item())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fast_fn(geo, x, mode: str, compile: bool):
    """(forward of the fast path outside autocast, its path name, min per-token cosine and max absolute difference
    of its patch tokens to eager float32, warm-up seconds)."""
    from geodino.models.frozen import FastViT, choose_path

    path = choose_path(x.device, mode, compile=compile and mode != "int8")
    fast = FastViT(geo, path).to(x.device)

    def fn():
        with torch.autocast(x.device.type, enabled=False):
            return fast.forward_features(x)

    with torch.inference_mode():
        t0 = time.perf_counter()
        got = fn()["x_norm_patchtokens"]
        _sync(x.device)
        warm = time.perf_counter() - t0
        ref = geo.forward_features(x)["x_norm_patchtokens"]
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1).min().item()
    return fn, path.name, cos, (got - ref).abs().max().item(), warm


def bench(
    arch: str,
    batch: int,
    size: int,
    repeats: int,
    dtypes: list[str],
    fast: bool,
    compile: bool,
    int8: bool,
    device: torch.device,
    compile_peers: bool = False,
) -> Iterator[dict]:
    """One row per dtype, yielded as soon as it is measured; a dtype whose run raises gives a row with `failed` (the
    error in one line) and the next dtype still runs, so one broken path does not cost a GPU session the others."""
    geo, hf, tm = (m.to(device) for m in build_trio(arch))
    x = torch.randn(batch, 3, size, size, device=device)
    err = check_agree(geo, hf, tm, x[:2])
    if not err <= AGREE:  # a speed ratio of different computations means nothing (NaN fails too)
        raise SystemExit(
            f"backbone.py: {arch}: geodino, transformers and timm disagree by {err:.1e} (> {AGREE:g}) on the same "
            "weights and input; fix the conversion before timing"
        )
    fns = {
        "geodino": lambda: geo.forward_features(x),
        "transformers": lambda: hf(pixel_values=x),
        "timm": lambda: tm.forward_features(x),
    }
    if compile_peers:  # compiled on their first call, in the untimed warm-up below
        hf_c, tm_c = torch.compile(hf, dynamic=False), torch.compile(tm.forward_features, dynamic=False)
        fns["transformers compiled"] = lambda: hf_c(pixel_values=x)
        fns["timm compiled"] = lambda: tm_c(x)
    for dt in dtypes + (["int8"] if int8 else []):
        try:
            row_fns = _bf16_weight_fns(geo, hf, tm, x, compile_peers) if dt == "bf16-weights" else fns
            yield _bench_dtype(dt, arch, batch, repeats, fast, compile, geo, x, row_fns, err, device)
        except Exception as e:  # reported in the table (traceback on stderr); the other rows still run
            traceback.print_exc()
            first = (str(e).splitlines() or [""])[0][:200]
            yield {"arch": arch, "dtype": dt, "failed": f"{type(e).__name__}: {first}"}
            if device.type == "cuda":
                torch.cuda.empty_cache()


def _bf16_weight_fns(geo, hf, tm, x, compile_peers: bool) -> dict:
    """The three eager forwards on bf16 copies of the models and a bf16 input, no autocast (a peer user's
    `model.to(torch.bfloat16)`); the float32 models stay as they are for the other rows."""
    import copy

    g16, h16, t16 = (copy.deepcopy(m).to(torch.bfloat16) for m in (geo, hf, tm))
    x16 = x.to(torch.bfloat16)
    fns = {
        "geodino": lambda: g16.forward_features(x16),
        "transformers": lambda: h16(pixel_values=x16),
        "timm": lambda: t16.forward_features(x16),
    }
    if compile_peers:
        hc, tc = torch.compile(h16, dynamic=False), torch.compile(t16.forward_features, dynamic=False)
        fns["transformers compiled"] = lambda: hc(pixel_values=x16)
        fns["timm compiled"] = lambda: tc(x16)
    return fns


def _ranges(times: dict[str, list[float]]) -> str:
    """Smallest-largest value over the repeats of each ratio the row prints, every ratio taken within a repeat."""
    n = len(times["geodino"])
    ips = {k: [1 / t for t in v] for k, v in times.items()}
    pairs = {"g/tr": [ips["geodino"][i] / ips["transformers"][i] for i in range(n)]}
    pairs["g/timm"] = [ips["geodino"][i] / ips["timm"][i] for i in range(n)]
    if "fast" in ips:
        pairs["fast/best"] = [ips["fast"][i] / max(ips["transformers"][i], ips["timm"][i]) for i in range(n)]
    return ", ".join(f"{k} {min(v):.2f}-{max(v):.2f}" for k, v in pairs.items())


def _bench_dtype(
    dt: str,
    arch: str,
    batch: int,
    repeats: int,
    fast: bool,
    compile: bool,
    geo: torch.nn.Module,
    x: torch.Tensor,
    fns: dict,
    err: float,
    device: torch.device,
) -> dict:
    """Median img/s of every model in `fns` (and the fast path) for one dtype, interleaved repeat by repeat."""
    amp = dt == "bf16"
    run = dict(fns)
    extra: dict = {}
    if fast:
        modes = {"fp32": "float32", "fp32-ieee": "float32-ieee", "fp32-mkl": "float32-mkl", "bf16": "bfloat16"}
        mode = {**modes, "bf16-weights": "bfloat16"}.get(dt, dt)
        run["fast"], extra["path"], extra["cos"], extra["diff"], extra["warmup_s"] = fast_fn(geo, x, mode, compile)
        if mode.startswith("float32") and not extra["diff"] <= AGREE:  # the float32 paths stay within ~1e-4
            raise ValueError(f"fast path {extra['path']} differs from eager float32 by {extra['diff']:.1e}")
    if dt == "int8":  # the baselines of the int8 row are the float32 ones
        amp = False
    times: dict[str, list[float]] = {k: [] for k in run}
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for fn in run.values():  # warm-up
            fn()
        for _ in range(repeats):
            for name, fn in run.items():
                _sync(device)
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
    ips = {k: batch / statistics.median(v) for k, v in times.items()}
    return {"arch": arch, "dtype": dt, "max_abs_diff": err, **ips, **extra, "ranges": _ranges(times)}


DTYPES = ["fp32", "fp32-ieee", "fp32-mkl", "bf16", "bf16-weights"]


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", default=["vit_small", "vit_base"])
    ap.add_argument("--batch", type=positive, default=16)
    ap.add_argument("--size", type=positive, default=224)
    ap.add_argument("--repeats", type=positive, default=7)
    ap.add_argument("--threads", type=positive, default=2)
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=DTYPES)
    ap.add_argument("--no-fast", dest="fast", action="store_false", help="leave out the fast-path column")
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="fast path without torch.compile")
    ap.add_argument("--int8", action="store_true", help="add the opt-in int8 fast-path row (vs float32 baselines)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (benchmarks/gpu.sh)")
    ap.add_argument("--compile-peers", action="store_true", help="add transformers and timm behind torch.compile")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.int8 and device.type != "cpu":
        ap.error("--int8 runs on CPU only")
    torch.set_num_threads(args.threads)
    from versions import versions

    peers = versions("torch", "transformers", "timm")
    print(f"{peers}; {device}, {args.threads} threads, batch {args.batch}, {args.size} px")
    head = f"| {'arch':9s} | {'dtype':9s} | geodino img/s | transformers img/s | timm img/s | "
    head += "geodino/transformers | geodino/timm |"
    if args.fast:
        head += " fast path | fast img/s | fast/best | cos | max diff | warm-up s |"
    if args.compile_peers:
        head += " transformers compiled img/s | timm compiled img/s |" + (" fast/best compiled |" if args.fast else "")
    head += f" ratios over the {args.repeats} repeats (min-max) |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|", flush=True)
    rows = []
    for arch in args.archs:
        for r in bench(
            arch,
            args.batch,
            args.size,
            args.repeats,
            args.dtypes,
            args.fast,
            args.compile,
            args.int8,
            device,
            args.compile_peers,
        ):
            rows.append(r)
            if "failed" in r:
                print(f"| {r['arch']:9s} | {r['dtype']:9s} | FAILED: {r['failed']} |", flush=True)
                continue
            line = (
                f"| {r['arch']:9s} | {r['dtype']:9s} | {r['geodino']:13.2f} | {r['transformers']:18.2f} | "
                f"{r['timm']:10.2f} | {r['geodino'] / r['transformers']:20.2f} | {r['geodino'] / r['timm']:12.2f} |"
            )
            if args.fast:
                best = max(r["transformers"], r["timm"])
                line += (
                    f" {r['path']} | {r['fast']:10.2f} | {r['fast'] / best:9.2f} | {r['cos']:.5f} | "
                    f"{r['diff']:.1e} | {r['warmup_s']:9.1f} |"
                )
            if args.compile_peers:
                best_c = max(r["transformers compiled"], r["timm compiled"])
                line += f" {r['transformers compiled']:27.2f} | {r['timm compiled']:19.2f} |"
                line += f" {r['fast'] / best_c:18.2f} |" if args.fast else ""
            print(line + f" {r['ranges']} |", flush=True)
    done = [r["max_abs_diff"] for r in rows if "failed" not in r]
    if done:
        print(f"outputs agree within {max(done):.1e} (float32)")


if __name__ == "__main__":
    main()
