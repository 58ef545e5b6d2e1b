"""Fast inference path (geodino.models.frozen): outputs equal the eager model's, lossy paths within a cosine."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import geodino.models.frozen as frozen
from geodino.errors import ConfigError, InputError
from geodino.models import build_model
from geodino.models.frozen import FastPath, FastViT, choose_path, fast_path, path_name


def trained_like(depth: int = 3, **kw) -> torch.nn.Module:
    """A tiny ViT whose LayerScale, biases and norms are far from their init, so every folded term matters."""
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=depth, **kw).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith(("gamma", "bias")) or "norm" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return m


VARIANTS = {
    "official": {},
    "swiglu_untied_rms": {"ffn_layer": "swiglu", "untie_cls_and_patch_norms": True, "norm_layer": "rmsnorm"},
    "no_storage_no_ls": {"n_storage_tokens": 0, "layerscale_init": None, "mask_k_bias": False},
}


def _max_diff(a, b) -> float:
    return max(((x - y).abs().max().item() if x.numel() else 0.0) for x, y in zip(a, b))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_float32_fast_path_matches_eager_within_1e4(variant):
    m = trained_like(**VARIANTS[variant])
    fast = FastViT(m, FastPath(True, "float32"))
    x = torch.randn(2, 3, 64, 48)
    ref = m.get_intermediate_layers(x, n=[0, 2], reshape=True, return_class_token=True, return_extra_tokens=True)
    out = fast.get_intermediate_layers(x, n=[0, 2], reshape=True, return_class_token=True, return_extra_tokens=True)
    assert len(out) == 2 and out[0][0].shape == (2, 192, 4, 3)
    for o, r in zip(out, ref):
        assert _max_diff(o, r) < 1e-4
    # unnormed intermediate layers and the forward_features dict
    for o, r in zip(fast.get_intermediate_layers(x, n=2, norm=False), m.get_intermediate_layers(x, n=2, norm=False)):
        assert (o - r).abs().max().item() < 1e-4
    ff, rf = fast.forward_features(x), m.forward_features(x)
    for key in ("x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm"):
        assert ff[key].shape == rf[key].shape
        assert ff[key].numel() == 0 or (ff[key] - rf[key]).abs().max().item() < 1e-4, key
    assert torch.allclose(fast(x), m(x), atol=1e-4)


def test_fast_path_keeps_the_model_untouched_and_checks_its_input():
    m = trained_like()
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fast = FastViT(m, FastPath(True))
    assert m.training and m.rope_embed.training  # the eager model's modes are not changed
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not fast.train().training
    with pytest.raises(InputError, match="masks have 5 entries per image but the input has 4 patches"):
        fast.forward_features(torch.randn(1, 3, 32, 32), masks=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(InputError, match="got 2 crop groups but 1 mask entries"):
        fast.forward_features([torch.randn(1, 3, 32, 32)] * 2, masks=[None])
    with pytest.raises(InputError, match="not a multiple of the patch size"):
        fast.forward_features(torch.randn(1, 3, 30, 32))
    with pytest.raises(InputError, match="out of range"):
        fast.get_intermediate_layers(torch.randn(1, 3, 32, 32), n=[5])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_masked_crop_groups_match_the_eager_list_forward(variant):
    """The teacher-head warm-up's call: [globals, locals] with masks [m, None]; masked patches become the mask token
    (trained here, so a wrong placement shows), each group's dict as the official list forward gives it."""
    m = trained_like(**VARIANTS[variant])
    with torch.no_grad():
        m.mask_token.normal_(0, 1.0)
    fast = FastViT(m, FastPath(True, "float32"))
    g, loc = torch.randn(4, 3, 32, 48), torch.randn(6, 3, 16, 16)
    masks = torch.rand(4, 6) < 0.5
    masks[0] = True  # a fully masked image
    ref = m.forward_features([g, loc], masks=[masks, None])
    out = fast.forward_features([g, loc], masks=[masks, None])
    assert len(out) == 2 and out[1]["masks"] is None and torch.equal(out[0]["masks"], masks)
    for o, r in zip(out, ref):
        for key in ("x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm"):
            assert o[key].shape == r[key].shape
            assert o[key].numel() == 0 or (o[key] - r[key]).abs().max().item() < 1e-4, key
    unmasked = fast.forward_features(g)["x_norm_clstoken"]
    assert (unmasked - out[0]["x_norm_clstoken"]).abs().max() > 1e-2  # the masks changed the output
    single = fast.forward_features(g, masks=masks.view(4, 2, 3))  # masks in grid shape, as official accepts
    assert (single["x_norm_patchtokens"] - ref[0]["x_norm_patchtokens"]).abs().max() < 1e-4


def test_fast_path_computes_its_own_dtype_under_a_callers_autocast():
    """A bf16-mixed distillation step runs the teacher inside autocast: a float32 path must stay float32 there."""
    m = trained_like()
    fast = FastViT(m, FastPath(True, "float32"))
    x = torch.randn(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast.forward_features(x)["x_norm_patchtokens"]
        lossy = m.forward_features(x)["x_norm_patchtokens"]
    ref = m.forward_features(x)["x_norm_patchtokens"]
    assert out.dtype == torch.float32 and (out - ref).abs().max() < 1e-4
    assert (lossy.float() - ref).abs().max() > 1e-3  # what autocast would have done to it


def test_compiled_masked_calls_have_their_own_graph(monkeypatch):
    m = trained_like(depth=1)
    with torch.no_grad():
        m.mask_token.normal_(0, 1.0)
    path = choose_path("cpu", "float32")
    if not path.compile:
        pytest.skip("no C++ compiler for inductor")
    monkeypatch.setitem(frozen.PAD_MIN_SHARE, "cpu", 0.5)
    fast = FastViT(m, path)
    assert fast.warmup(4, 32, 32, [], False, masked=True) and not fast.warmup(4, 32, 32, [], False, masked=True)
    x, masks = torch.randn(3, 3, 32, 32), torch.rand(3, 4) < 0.5
    for got, want in ((fast.forward_features(x, masks=masks), m.forward_features(x, masks=masks)),
                      (fast.forward_features(x), m.forward_features(x))):  # fmt: skip
        assert (got["x_norm_patchtokens"] - want["x_norm_patchtokens"]).abs().max() < 1e-4
    assert fast._graphs == {(4, 32, 32, (), False, True), (3, 32, 32, (), False, False)}


@pytest.mark.parametrize(("dtype", "min_cos"), [("bfloat16", 0.999), ("int8", 0.995)])
def test_lossy_paths_stay_within_a_measured_cosine(dtype, min_cos):
    """bf16 weights / int8 dynamic quantisation: per-token cosine to float32 (README: 0.99999+ on ViT-S)."""
    m = trained_like()
    fast = FastViT(m, FastPath(True, dtype))
    x = torch.randn(2, 3, 64, 64)
    got = fast.forward_features(x)["x_norm_patchtokens"]
    ref = m.forward_features(x)["x_norm_patchtokens"]
    assert got.dtype == torch.float32
    cos = F.cosine_similarity(got, ref, dim=-1)
    assert cos.min().item() > min_cos
    assert (got - ref).abs().max().item() > 1e-6  # really ran in lower precision
    if dtype == "bfloat16":
        assert fast.core.blocks[0].qkv.weight.dtype == torch.bfloat16
        assert fast.core.norm.weight.dtype == torch.float32


def test_compiled_path_matches_eager_and_pads_a_smaller_last_batch(monkeypatch):
    """torch.compile (inductor, freezing on CPU): one compile for batch 4; batch 3 reuses it (zero-padded), batch 1
    (a quarter of it) runs the prepared weights uncompiled."""
    pytest.importorskip("torch._inductor")
    m = trained_like(depth=1)
    path = choose_path("cpu", "float32")
    if not path.compile:
        pytest.skip("no C++ compiler for inductor")
    monkeypatch.setitem(frozen.PAD_MIN_SHARE, "cpu", 0.75)  # the rule at a given share (its value is tuned)
    fast = FastViT(m, path)
    x = torch.randn(4, 3, 32, 32)
    graph_calls = []
    for batch in (x, x[:3], x[:1]):
        out = fast.get_intermediate_layers(batch, n=1, return_class_token=True)[0]
        ref = m.get_intermediate_layers(batch, n=1, return_class_token=True)[0]
        assert out[0].shape == ref[0].shape
        assert _max_diff(out, ref) < 1e-4
        if not graph_calls:  # count the compiled graph's calls (and their batch) from here on
            fast._compiled = lambda xx, *a, run=fast._compiled: graph_calls.append(xx.shape[0]) or run(xx, *a)
            graph_calls.append(None)
    assert graph_calls == [None, 4]  # batch 3 ran the batch-4 graph padded; batch 1 did not call it
    assert fast._graphs == {(4, 32, 32, (0,), True, False)}  # one graph: batch 4, last block, normed, no masks
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    with torch.inference_mode():  # a caller in inference mode reuses the graph compiled outside it
        out = fast.get_intermediate_layers(x, n=1)[0]
    assert counters["stats"]["unique_graphs"] == graphs
    assert _max_diff([out], m.get_intermediate_layers(x, n=1)) < 1e-4
    plain = fast.get_intermediate_layers(x, n=1)[0]
    plain += 1  # outside inference mode the outputs are ordinary tensors


def test_warmup_runs_only_for_a_call_no_compiled_graph_serves(monkeypatch):
    """embed reuses a FastViT across rasters: its warm-up must not cost a forward once the graph exists (it did, a
    fifth of a 16-tile run); a smaller batch is padded to the compiled one, other layers / norm need their own."""
    calls = []

    def fake_compile(fn, **kw):
        return lambda x, take, norm, *rest: calls.append((x.shape[0], take, norm)) or fn(x, take, norm, *rest)

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setitem(frozen.PAD_MIN_SHARE, "cpu", 0.75)  # the rule at a given share (its value is tuned)
    m = trained_like(depth=2)
    fast = FastViT(m, FastPath(True, "float32", compile=True))
    assert fast.warmup(4, 32, 32, [1]) and calls == [(4, (1,), True)]
    assert not fast.warmup(4, 32, 32, [1]) and not fast.warmup(3, 32, 32, [1])  # served by the batch-4 graph
    assert fast.warmup(4, 32, 32, [1], norm=False) and fast.warmup(4, 32, 32, [0, 1]) and fast.warmup(4, 32, 48, [1])
    assert len(calls) == 4
    x = torch.randn(3, 3, 32, 32)  # the pipeline's call with 3 tiles: padded to 4, same values as eager
    out = fast.get_intermediate_layers(x, n=[1], reshape=True)[0]
    assert calls[-1] == (4, (1,), True) and out.shape == (3, 192, 2, 2)
    assert (out - m.get_intermediate_layers(x, n=[1], reshape=True)[0]).abs().max().item() < 1e-4
    assert not FastViT(m, FastPath(True, "float32", compile=False)).warmup(4, 32, 32, [1])  # eager: nothing to do
    # 2 tiles fill half the batch-4 graph (< PAD_MIN_SHARE on CPU): the prepared weights run them uncompiled
    x2, n_calls = x[:2], len(calls)
    out = fast.get_intermediate_layers(x2, n=[1], reshape=True)[0]
    assert len(calls) == n_calls and out.shape == (2, 192, 2, 2)
    assert (out - m.get_intermediate_layers(x2, n=[1], reshape=True)[0]).abs().max().item() < 1e-4
    monkeypatch.setitem(frozen.PAD_MIN_SHARE, "cpu", 0.0)  # the CUDA rule: always the padded graph
    fast.get_intermediate_layers(x2, n=[1], reshape=True)
    assert calls[n_calls:] == [(4, (1,), True)]
    monkeypatch.setitem(frozen.PAD_MIN_SHARE, "cpu", 0.75)
    # a job whose batch the batch-4 graph does not serve (another raster's fill) warms up its own graph, then uses it
    assert fast.warmup(2, 32, 32, [1]) and calls[-1] == (2, (1,), True)
    fast.get_intermediate_layers(x2, n=[1], reshape=True)
    assert calls[-1] == (2, (1,), True) and len(calls) == n_calls + 3


def test_choose_path_modes_and_switch(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    assert choose_path("cpu").dtype == "float32" and choose_path("cpu").enabled
    assert choose_path("cpu", amp=True).dtype == "bfloat16"
    assert choose_path("cuda").dtype == "bfloat16"  # as the eager path's autocast on CUDA
    assert choose_path("cpu", "int8").name == "fast-int8"
    assert not choose_path("cpu", compile=False).compile
    assert not choose_path("cpu", "off").enabled and choose_path("cpu", "off").name == "eager"
    with pytest.raises(ConfigError, match="CPU only"):
        choose_path("cuda", "int8")
    with pytest.raises(ConfigError, match="not one of auto, off"):
        choose_path("cpu", "fp8")
    monkeypatch.setenv("GEODINO_FAST", "0")
    assert not choose_path("cpu", "bfloat16").enabled
    m = trained_like()
    assert fast_path(m) is m and path_name(m) == "eager"
    monkeypatch.setenv("GEODINO_FAST", "int8")
    assert choose_path("cpu").dtype == "int8"
    monkeypatch.setenv("GEODINO_FAST", "turbo")
    with pytest.raises(ConfigError, match="GEODINO_FAST='turbo'"):
        choose_path("cpu")
    monkeypatch.setenv("GEODINO_FAST", "1")
    fast = fast_path(m, compile=False)
    assert isinstance(fast, FastViT) and path_name(fast) == "fast-float32-onednn"


def test_cpu_compile_runs_with_inductor_freezing(monkeypatch):
    """`torch.compile(options={"freezing": True})` was silently ignored: the CPU graph must run with freezing set."""
    import torch._inductor.config as inductor_config

    import geodino.models.frozen as frozen

    seen = []

    def fake_compile(fn, **kw):
        assert kw == {"dynamic": False}
        return lambda *a: seen.append(inductor_config.freezing) or fn(*a)

    monkeypatch.setattr(torch, "compile", fake_compile)
    m = trained_like(depth=1)
    fast = FastViT(m, FastPath(True, "float32", compile=True))
    x = torch.randn(1, 3, 32, 32)
    assert _max_diff([fast(x)], [m(x)]) < 1e-4
    assert seen == [True] and inductor_config.freezing is False  # set for the call only
    gpu = frozen._compile(fast.core, torch.device("cuda"))
    gpu(x, (0,), True, *fast._rope(x))
    assert seen == [True, False]  # nothing CPU-specific on CUDA


def test_rope_tables_are_kept_per_grid_and_match_eager():
    m = trained_like(depth=2)
    fast = FastViT(m, FastPath(True, "float32"))
    for shape in ((2, 3, 32, 48), (1, 3, 64, 32), (2, 3, 32, 48)):
        x = torch.randn(*shape)
        assert _max_diff(fast.get_intermediate_layers(x, n=1), m.get_intermediate_layers(x, n=1)) < 1e-4
    assert sorted(k[:2] for k in fast._rope_cache) == [(2, 3), (4, 2)]
    sin, cos = fast._rope_cache[(2, 3, torch.device("cpu"))]
    assert sin.shape == cos.shape == (6 + fast.n_prefix_tokens, 1, 1, m.embed_dim // m.num_heads // 2)  # halves of q, k
    assert torch.allclose(sin[: fast.n_prefix_tokens], torch.zeros(())) and torch.allclose(cos[:1], torch.ones(()))


# ----------------------------------------------------------------------------------------------------------------
# 3xTF32: float32 projections on TF32 tensor cores (the numerics are hardware-independent: checked on CPU)
# ----------------------------------------------------------------------------------------------------------------


def test_tf32_round_ties_to_even_and_clears_the_dropped_bits():
    u = 2.0**-10  # one TF32 unit at 1.0
    x = torch.tensor([1 + u / 2, 1 + 3 * u / 2, 1 + u / 2 + 2**-20, -(1 + 3 * u / 2), 1 + u / 2 - 2**-23, 3.0, 0.0])
    want = torch.tensor([1.0, 1 + 2 * u, 1 + u, -(1 + 2 * u), 1.0, 3.0, 0.0])
    got = frozen.tf32_round(x)
    assert torch.equal(got, want)  # halfway: to the even neighbour; just above / below halfway: nearest
    torch.manual_seed(0)
    y = torch.randn(10_000) * 10.0 ** torch.randint(-6, 6, (10_000,))
    r = frozen.tf32_round(y)
    assert (r.view(torch.int32) & 0x1FFF).eq(0).all()  # 13 dropped significand bits are zero
    assert ((r - y).abs() <= y.abs() * 2.0**-11).all()  # within half a TF32 unit
    assert torch.equal(torch.sign(r), torch.sign(y))


def test_tf32x3_linear_is_as_accurate_as_float32_and_plain_tf32_is_not():
    """Against a float64 product: 3xTF32 within 2x float32's own error, plain TF32 (xh Wh^T) ~100x further off."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(384, 1536)
    x = torch.randn(64, 384)
    ref = x.double() @ lin.weight.double().T + lin.bias.double()
    err = {
        "float32": (lin(x).double() - ref).abs().max().item(),
        "3xtf32": (frozen._Tf32x3Linear(lin)(x).double() - ref).abs().max().item(),
        "tf32": (F.linear(frozen.tf32_round(x), frozen.tf32_round(lin.weight), lin.bias).double() - ref)
        .abs()
        .max()
        .item(),
    }
    assert err["3xtf32"] <= 2 * err["float32"]
    assert err["tf32"] > 100 * err["3xtf32"]


def _truncating_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear` with a tensor-core-like accumulator: products exact, added 8 at a time to a float32 running sum
    that is truncated toward zero after each addition instead of rounded."""
    acc = torch.zeros(x.shape[0], w.shape[0])
    xd, wd = x.double(), w.double()
    for k in range(0, x.shape[1], 8):
        s = acc.double() + xd[:, k : k + 8] @ wd[:, k : k + 8].T
        f = s.float()
        acc = torch.where(f.double().abs() > s.abs(), torch.nextafter(f, torch.zeros_like(f)), f)
    return acc if b is None else acc + b


def test_tf32x3_keeps_the_large_product_apart_from_the_small_ones(monkeypatch):
    """With an accumulator that truncates (as tensor cores do), summing the small products xh Wl^T + xl Wh^T into
    the running sum of the large one costs a unit of that sum per addition; in their own product they cost ~2^-11 of
    it. The module's two products are at least twice as accurate as one product over the tripled inner dimension
    (measured on an H200: 3.9x for a ViT-L fc2)."""
    from types import SimpleNamespace

    import geodino.models.tf32x3 as tf32x3

    torch.manual_seed(0)
    lin = torch.nn.Linear(1024, 64)
    lin.weight.data /= lin.weight.abs().max()
    x = torch.randn(32, 1024)
    ref = x.double() @ lin.weight.double().T + lin.bias.double()
    xh, wh = frozen.tf32_round(x), frozen.tf32_round(lin.weight.detach())
    xl, wl = frozen.tf32_round(x - xh), frozen.tf32_round(lin.weight.detach() - wh)
    one = _truncating_linear(torch.cat([xh, xh, xl], 1), torch.cat([wh, wl, wh], 1), lin.bias.detach())
    monkeypatch.setattr(tf32x3, "F", SimpleNamespace(linear=_truncating_linear))
    with torch.no_grad():
        two = frozen._Tf32x3Linear(lin)(x)
    err_one, err_two = ((y.double() - ref).abs().mean().item() for y in (one, two))
    assert err_two < err_one / 2


def _plain_tf32(self, x):
    """A `_Tf32x3Linear` reduced to one TF32 product (xh Wh^T): what TF32 tensor cores alone would compute."""
    return F.linear(frozen.tf32_round(x), self.weight_hi, self.bias)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_tf32x3_fast_path_matches_eager_within_1e4(variant, monkeypatch):
    m = trained_like(**VARIANTS[variant])
    fast = FastViT(m, FastPath(True, "float32", tf32x3=True))
    assert fast.path_name == "fast-float32-3xtf32"
    assert sum(isinstance(mod, frozen._Tf32x3Linear) for mod in fast.modules()) == 4 * m.n_blocks
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 48)
    ref = m.get_intermediate_layers(x, n=[0, 2], return_class_token=True, return_extra_tokens=True)
    out = fast.get_intermediate_layers(x, n=[0, 2], return_class_token=True, return_extra_tokens=True)
    for o, r in zip(out, ref):
        assert _max_diff(o, r) < 1e-4
    if variant == "official":  # the tolerance tells the two apart: one TF32 product per projection breaks it
        monkeypatch.setattr(frozen._Tf32x3Linear, "forward", _plain_tf32)
        plain = fast.get_intermediate_layers(x, n=[0, 2], return_class_token=True, return_extra_tokens=True)
        assert max(_max_diff(o, r) for o, r in zip(plain, ref)) > 1e-4


def test_tf32x3_is_chosen_for_float32_on_tensor_core_gpus_only(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not choose_path("cuda", "float32", compile=False).tf32x3  # no GPU to ask: no error from the probe
    cap = {"value": (9, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: cap["value"])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: cap["value"] >= (8, 0))
    assert choose_path("cuda", "float32").tf32x3
    assert choose_path("cuda", "float32", compile=False).name == "fast-float32-3xtf32"
    assert not choose_path("cuda", "float32-ieee").tf32x3 and choose_path("cuda", "float32-ieee").dtype == "float32"
    assert not choose_path("cuda").tf32x3  # auto on CUDA with native bf16 is bf16
    assert not choose_path("cpu", "float32").tf32x3 and not choose_path("cpu", "float32-ieee").tf32x3
    monkeypatch.setenv("GEODINO_FAST", "float32-ieee")
    assert choose_path("cuda", "auto", compile=False).name == "fast-float32"
    monkeypatch.setenv("GEODINO_FAST", "float32")
    assert choose_path("cuda").tf32x3
    cap["value"] = (7, 5)  # Turing: no TF32 tensor cores (and no native bf16: auto is float32 there)
    assert not choose_path("cuda").tf32x3
    with pytest.raises(ConfigError, match="float32 path"):
        FastViT(trained_like(depth=1), FastPath(True, "bfloat16", tf32x3=True))


def _precision_state() -> tuple:
    m = torch.backends.cuda.matmul
    return m.allow_tf32, torch.get_float32_matmul_precision(), m.fp32_precision.replace("none", "ieee")


@pytest.mark.parametrize("before", ["default", "legacy_tf32", "new_ieee", "mixed"])
def test_tf32_matmuls_sets_the_cuda_precision_for_the_block_only(before):
    """Inside: TF32 products on CUDA, and every precision getter still readable (inductor calls
    `torch.get_float32_matmul_precision()` while compiling; the per-backend setter alone made it raise). After: the
    caller's setting, whichever API it used."""
    matmul = torch.backends.cuda.matmul
    start = _precision_state()  # other tests may have set TF32 (training sets float32_matmul_precision "high")
    try:
        torch.set_float32_matmul_precision("highest")  # the default, the same on every backend
        if before == "legacy_tf32":
            matmul.allow_tf32 = True
        elif before == "new_ieee":
            matmul.fp32_precision = "ieee"
        elif before == "mixed":  # per-backend TF32 over a generic default: the legacy getters raise
            matmul.fp32_precision = "tf32"
        if before == "mixed":
            with pytest.raises(RuntimeError):
                _precision_state()
            with frozen.tf32_matmuls(torch.device("cuda")):
                assert matmul.fp32_precision == "tf32"
            assert matmul.fp32_precision == "tf32"
            return
        state = _precision_state()
        with frozen.tf32_matmuls(torch.device("cuda")):
            assert _precision_state() == (True, "high", "tf32")
        assert _precision_state() == state
        with pytest.raises(RuntimeError, match="boom"), frozen.tf32_matmuls(torch.device("cuda")):
            raise RuntimeError("boom")
        assert _precision_state() == state
        with frozen.tf32_matmuls(torch.device("cpu")):  # CPU float32 products of TF32 operands are exact already
            assert _precision_state() == state
    finally:  # the state this test found (the generic setter also clears a per-backend one)
        torch.set_float32_matmul_precision(start[1])
        assert _precision_state() == start


def test_tf32x3_forward_runs_inside_tf32_matmuls(monkeypatch):
    """Every forward of the 3xTF32 path (uncompiled, compiled and its compile) runs with TF32 products enabled."""
    import contextlib

    active, seen = [False], []

    @contextlib.contextmanager
    def fake(device):
        active[0] = True
        try:
            yield
        finally:
            active[0] = False

    monkeypatch.setattr(frozen, "tf32_matmuls", fake)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: lambda *a: seen.append(active[0]) or fn(*a))
    m = trained_like(depth=1)
    x = torch.randn(1, 3, 32, 32)
    for compile in (False, True):
        fast = FastViT(m, FastPath(True, "float32", compile=compile, tf32x3=True))
        fast.core.register_forward_pre_hook(lambda mod, args: seen.append(active[0]))
        fast(x)
    assert seen and all(seen) and not active[0]
    plain = FastViT(m, FastPath(True, "float32"))
    plain.core.register_forward_pre_hook(lambda mod, args: seen.append(active[0]))
    plain(x)
    assert seen[-1] is False  # IEEE float32 products leave the setting alone


def test_tf32x3_compiled_matches_uncompiled():
    """Inductor compiles the bit-level rounding (int32 views, masks) to the same values as eager."""
    m = trained_like(depth=2)
    torch.manual_seed(2)
    x = torch.randn(2, 3, 32, 32)
    eager = FastViT(m, FastPath(True, "float32", tf32x3=True)).forward_features(x)
    compiled = FastViT(m, FastPath(True, "float32", compile=True, tf32x3=True)).forward_features(x)
    for key in ("x_norm_clstoken", "x_norm_patchtokens"):
        assert (compiled[key] - eager[key]).abs().max().item() < 1e-5
        assert (compiled[key] - m.forward_features(x)[key]).abs().max().item() < 1e-4


def test_yaml_booleans_name_the_off_and_auto_modes():
    """YAML reads `fast: off` as false, and a str config field then holds 'False': that is 'off', not an error."""
    from geodino.models.frozen import fast_mode

    assert [fast_mode(v) for v in (False, "False", "off", "0", "no")] == ["off"] * 5
    assert [fast_mode(v) for v in (True, "True", "on", " Auto ")] == ["auto"] * 4
    assert not choose_path("cpu", "False").enabled and choose_path("cpu", "True").enabled
    with pytest.raises(ConfigError, match=r"^probe.fast='fastest' is not one of auto, off, float32, float32-ieee"):
        fast_mode("fastest", "probe.fast")


def test_preparing_an_uncompiled_fast_path_imports_no_compiler_machinery():
    """Preparing the fast path without compiling imports neither sympy nor dynamo/inductor (torch's skip_init pulled in
    sympy and torch.fx's symbolic shapes: 0.65 s on this CPU, suspected of much of an embed's extra set-up on a GPU)
    and leaves the caller's random stream where it was. In a fresh process, so that no other test's imports count."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from geodino.models import build_model\n"
        "from geodino.models.frozen import FastPath, FastViT\n"
        "m = build_model('vit_tiny', depth=2).eval()\n"
        "torch.manual_seed(0); want = torch.rand(3); torch.manual_seed(0)\n"
        "for dtype in ('float32', 'bfloat16'):\n"
        "    FastViT(m, FastPath(True, dtype))(torch.zeros(1, 3, 32, 32))\n"
        "assert torch.equal(torch.rand(3), want), 'the random stream moved'\n"
        "print(sorted(k for k in ('sympy', 'torch._dynamo', 'torch._inductor') if k in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
