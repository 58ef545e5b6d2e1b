"""The CPU float32 fast path's oneDNN projections: equal to `F.linear` (+ exact GELU), chosen by `choose_path` for
float32 on CPU, kept out by `float32-mkl`, and the whole FastViT within 1e-4 of eager, compiled or not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import geodino.models.fast_choice as fast_choice
from geodino.errors import ConfigError
from geodino.models.frozen import FastPath, FastViT, choose_path
from geodino.models.onednn_linear import _OneDnnLinear, onednn_linears_available
from tests.models.test_frozen import VARIANTS, _max_diff, trained_like

pytestmark = pytest.mark.skipif(not onednn_linears_available(), reason="this torch build has no oneDNN linear")


@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_onednn_linear_equals_f_linear(gelu, bias):
    torch.manual_seed(0)
    lin = nn.Linear(24, 40, bias=bias)
    fused = _OneDnnLinear(lin, gelu=gelu)
    assert fused.weight.data_ptr() == lin.weight.data_ptr()  # the weights are shared, not copied
    for x in (torch.randn(7, 24), torch.randn(2, 5, 24)):  # 2-D and token-shaped inputs
        want = F.linear(x, lin.weight, lin.bias)
        want = F.gelu(want) if gelu else want  # exact (erf) GELU, not the tanh one
        got = fused(x)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 1e-5
    if gelu:
        x = torch.randn(7, 24) * 3
        tanh = F.gelu(F.linear(x, lin.weight, lin.bias), approximate="tanh")
        assert (fused(x) - tanh).abs().max().item() > 1e-4  # the tanh form would differ measurably


def test_onednn_linear_runs_f_linear_for_inputs_onednn_does_not_take():
    """A bf16 input (e.g. a caller's autocast region) or bf16 weights take the plain product, same values."""
    torch.manual_seed(0)
    lin = nn.Linear(16, 8)
    fused = _OneDnnLinear(lin, gelu=True)
    x = torch.randn(3, 16).bfloat16()
    want = F.gelu(F.linear(x, lin.weight.bfloat16(), lin.bias.bfloat16()))
    assert torch.equal(fused.to(torch.bfloat16)(x), want)


def test_choose_path_takes_onednn_for_float32_on_cpu_only(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    assert choose_path("cpu", "auto", compile=False).name == "fast-float32-onednn"
    assert choose_path("cpu", "float32-ieee", compile=False).onednn  # IEEE products either way on CPU
    mkl = choose_path("cpu", "float32-mkl", compile=False)
    assert mkl.name == "fast-float32" and not mkl.onednn and mkl.dtype == "float32"
    assert not choose_path("cpu", "bfloat16").onednn and not choose_path("cpu", "int8").onednn
    assert choose_path("cpu", "float32-mkl") != choose_path("cpu", "float32")  # prepared models kept apart
    with pytest.raises(ConfigError, match="float32-mkl is a CPU mode"):
        choose_path("cuda", "float32-mkl")
    monkeypatch.setenv("GEODINO_FAST", "float32-mkl")
    assert not choose_path("cpu", "auto").onednn
    monkeypatch.delenv("GEODINO_FAST")
    monkeypatch.setattr(fast_choice, "onednn_linears_available", lambda: False)  # a build without oneDNN
    assert choose_path("cpu", "auto", compile=False).name == "fast-float32"


def test_onednn_is_taken_on_x86_64_only(monkeypatch):
    import geodino.models.onednn_linear as onednn

    onednn.onednn_linears_available.cache_clear()
    monkeypatch.setattr(onednn.platform, "machine", lambda: "arm64")
    try:
        assert not onednn.onednn_linears_available()
    finally:
        onednn.onednn_linears_available.cache_clear()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_onednn_fast_path_matches_eager_within_1e4(variant):
    m = trained_like(**VARIANTS[variant])
    fast = FastViT(m, FastPath(True, "float32", onednn=True))
    assert fast.path_name == "fast-float32-onednn"
    blocks = fast.core.blocks
    assert all(isinstance(getattr(b, n), _OneDnnLinear) for b in blocks for n in ("qkv", "proj", "fc1", "fc2"))
    swiglu = variant.startswith("swiglu")
    assert all(b.gelu_fused is not swiglu and b.fc1.gelu is not swiglu for b in blocks)  # SwiGLU gates in the block
    x = torch.randn(2, 3, 64, 48)
    ref = m.get_intermediate_layers(x, n=[0, 2], reshape=True, return_class_token=True)
    out = fast.get_intermediate_layers(x, n=[0, 2], reshape=True, return_class_token=True)
    for o, r in zip(out, ref):
        assert _max_diff(o, r) < 1e-4
    ff, rf = fast.forward_features(x), m.forward_features(x)
    assert (ff["x_norm_patchtokens"] - rf["x_norm_patchtokens"]).abs().max().item() < 1e-4


def test_onednn_fast_path_compiled_matches_eager():
    """Inductor keeps oneDNN's linear as an extern kernel in the frozen graph: same values as the eager model."""
    pytest.importorskip("torch._inductor")
    m = trained_like(depth=2)
    path = choose_path("cpu", "float32")
    if not path.compile:
        pytest.skip("no C++ compiler for inductor")
    assert path.onednn and path.name == "fast-float32-onednn-compiled"
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    got = FastViT(m, path).forward_features(x)
    ref = m.forward_features(x)
    for key in ("x_norm_clstoken", "x_norm_patchtokens"):
        assert (got[key] - ref[key]).abs().max().item() < 1e-4
