"""benchmarks/backbone.py's bf16-weights row and its per-repeat ratio ranges: the peers' bf16 row compared the fast
path's bf16 weights with transformers and timm under autocast (float32 weights cast on every call); the
`bf16-weights` row gives every model bf16 weights and a bf16 input, as `torch_dtype=torch.bfloat16` gives a user of
those libraries. The last column gives each ratio's smallest and largest value over the repeats."""

from __future__ import annotations

import pytest
import torch

from tests.benchmarks.conftest import bench_module


@pytest.fixture(scope="module")
def bench():
    return bench_module("backbone")


def test_ratio_ranges_are_taken_within_each_repeat(bench):
    # seconds per repeat; img/s is 1 / s, so a ratio of rates is the inverse ratio of times
    times = {"geodino": [1.0, 2.0], "transformers": [2.0, 2.0], "timm": [1.0, 4.0], "fast": [0.5, 1.0]}
    line = bench._ranges(times)
    # g/tr: 2/1 and 2/2; g/timm: 1/1 and 4/2; fast/best: (1/0.5)/max(1/2, 1/1) = 2, (1/1)/max(1/2, 1/4) = 2
    assert line == "g/tr 1.00-2.00, g/timm 1.00-2.00, fast/best 2.00-2.00"
    assert "fast/best" not in bench._ranges({k: v for k, v in times.items() if k != "fast"})


@pytest.mark.slow  # builds the geodino / transformers / timm trio (over a minute on a loaded 2-core machine)
def test_bf16_weight_row_runs_every_model_in_bf16_and_leaves_the_float32_models(bench):
    geo, hf, tm = bench.build_trio("vit_tiny")
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    fns = bench._bf16_weight_fns(geo, hf, tm, x, compile_peers=False)
    with torch.inference_mode():
        outs = {
            "geodino": fns["geodino"]()["x_norm_patchtokens"],
            "transformers": fns["transformers"]().last_hidden_state,
            "timm": fns["timm"](),
        }
        ref = geo.forward_features(x)["x_norm_patchtokens"]
    assert all(o.dtype == torch.bfloat16 for o in outs.values()), {k: o.dtype for k, o in outs.items()}
    assert all(p.dtype == torch.float32 for m in (geo, hf, tm) for p in m.parameters())  # the other rows' models
    n = ref.shape[1]  # patch tokens are the last n of the peers' token sequences
    for name, out in outs.items():
        cos = torch.nn.functional.cosine_similarity(out[:, -n:].float(), ref, dim=-1).min().item()
        assert cos > 0.98, (name, cos)  # the same weights, in bf16
    assert "bf16-weights" in bench.DTYPES
