"""The fast inference path under the uses an audit tried to break it with: layer order, weights changed after it
was prepared, autocast around it, probe cache keys, pickling, dynamo's per-code recompile limit."""

from __future__ import annotations

import pickle

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.inference import accelerate, fast_backbone, path_of, runs_in

SPEC = "arch:vit_tiny?seed=0&depth=4&patch_size=8"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)


def _load(spec: str = SPEC, **kw):
    """A random backbone whose blocks matter: LayerScale ~ N(0, 0.5) instead of 1e-5 (at 1e-5 every block is
    nearly the identity and a wrong dtype or weight would hide under 1e-6)."""
    fb = load_backbone(spec, **kw)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for blk in fb.model.blocks:
            for ls in (blk.ls1, blk.ls2):
                ls.gamma.copy_(torch.randn(ls.gamma.shape, generator=g) * 0.5)
    return fb


def _x(fb, n: int = 2, size: int = 32) -> torch.Tensor:
    return fb.normalize(torch.rand(n, fb.in_chans, size, size, generator=torch.Generator().manual_seed(1)))


def test_layers_listed_out_of_order_come_back_in_block_order_on_both_paths():
    """The fast path returned [3, 1] as asked and eager as [1, 3] (official), so a raster's halves swapped."""
    from geodino.backbones import layer_indices

    assert layer_indices([3, 1, 1], 4) == [1, 3] and layer_indices([-1, 0], 4) == [0, 3]
    fb = _load()
    x = _x(fb)
    eager = fb.model.get_intermediate_layers(x, n=[3, 1], return_class_token=True)
    maps_e, cls_e = fb.features(x, [3, 1, 3])
    with fast_backbone(fb, mode="float32", compile=False):
        fast = fb.model.get_intermediate_layers(x, n=[3, 1, 1], return_class_token=True)
        maps_f, cls_f = fb.features(x, [3, 1, 3])
    assert len(fast) == len(eager) == 2 and len(maps_f) == len(maps_e) == 2
    for (pe, ce), (pf, cf) in zip(eager, fast):
        torch.testing.assert_close(pf, pe, atol=1e-4, rtol=0)
        torch.testing.assert_close(cf, ce, atol=1e-4, rtol=0)
    for a, b in zip(maps_e + cls_e, maps_f + cls_f):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=0)


def test_weights_changed_after_preparing_are_used():
    """The prepared copy was matched to the model object only: load_state_dict kept serving the old weights."""
    fb = _load()
    x = _x(fb)
    with fast_backbone(fb, mode="float32", compile=False):
        fb.features(x)
    other = _load(SPEC.replace("seed=0", "seed=1"))
    fb.model.load_state_dict(other.model.state_dict())
    want = fb.features(x)[1][0]
    with fast_backbone(fb, mode="float32", compile=False):
        torch.testing.assert_close(fb.features(x)[1][0], want, atol=1e-4, rtol=0)
    with torch.no_grad():
        fb.model.blocks[0].attn.qkv.weight.mul_(1.5)  # an in-place update
    want = fb.features(x)[1][0]
    with fast_backbone(fb, mode="float32", compile=False):
        torch.testing.assert_close(fb.features(x)[1][0], want, atol=1e-4, rtol=0)


def test_no_autocast_around_a_fast_path_and_the_recorded_dtype_is_what_ran():
    """amp=True with a forced float32 path computed in bf16 (recorded float32); with int8 it crashed."""
    fb = _load()
    x = _x(fb)
    want = fb.features(x)[1][0]  # eager float32
    fb.amp = True
    bf16_eager = fb.features(x)[1][0]
    assert (bf16_eager - want).abs().max() > 1e-4 and runs_in(fb) == "bfloat16"  # the eager model autocasts
    with fast_backbone(fb, mode="float32", compile=False):
        assert runs_in(fb) == "float32"
        torch.testing.assert_close(fb.features(x)[1][0], want, atol=1e-4, rtol=0)
    with fast_backbone(fb, mode="int8", compile=False):
        assert runs_in(fb) == "int8"
        got = fb.features(x)[1][0]
    assert torch.nn.functional.cosine_similarity(got, want).min() > 0.99


def _toy_probe_set(tmp_path):
    """A 4-image, 2-class RGB probe dataset (32 px images of seeds 0..3, labels 0 1 0 1) rooted at tmp_path."""
    from geodino.eval.datasets import ProbeDataset

    imgs = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    return ProbeDataset(
        name="toy", root=str(tmp_path), split="train", classes=["a", "b"], bands=["R", "G", "B"], length=4,
        getter=lambda i: {"image": imgs[i], "label": torch.tensor(i % 2)}, stamp="s",
    )  # fmt: skip


def test_probe_cache_keys_name_the_numerics_that_ran(tmp_path):
    """An amp backbone's bf16 features were cached under the float32 key; fast='off' on an int8-accelerated
    backbone ran int8 under the eager key. Both were then served to plain float32 runs."""
    from geodino.eval.features import FeatureConfig, extract_features

    ds = _toy_probe_set(tmp_path)
    cfg = FeatureConfig(layers="last", batch_size=2, cache_dir=str(tmp_path / "c"))
    amp = _load(amp=True)
    a = extract_features(amp, ds, cfg, progress=False)
    assert "dtype=bfloat16" in a.meta["transform"] and not a.from_cache
    plain = extract_features(_load(), ds, cfg, progress=False)
    assert not plain.from_cache and "dtype" not in plain.meta["transform"]
    int8 = _load()
    accelerate(int8, mode="int8", compile=False)
    off = extract_features(
        int8, ds, FeatureConfig(layers="last", batch_size=2, fast="off", cache=False), progress=False
    )
    assert off.meta["path"] == "eager" and torch.allclose(off.cls, plain.cls, atol=1e-5)  # off runs the eager model
    assert path_of(int8).dtype == "int8"  # and the backbone keeps its accelerated model after the job


@pytest.mark.parametrize("mode", ["float32", "bfloat16", "int8", "off"])
def test_a_probe_cache_hit_prepares_no_fast_weights(tmp_path, monkeypatch, mode):
    """The cache key was made after the fast path was prepared (a copy of the weights, ~1 s for ViT-L), so a
    cache hit paid for weights it never ran. The key is now planned first: a hit builds no FastViT, and the key
    planned for each mode is the one its computing run saved under."""
    import geodino.inference as inference
    from geodino.eval.features import FeatureConfig, extract_features

    ds = _toy_probe_set(tmp_path)
    cfg = FeatureConfig(layers="last", batch_size=2, fast=mode, cache_dir=str(tmp_path / "c"))
    built: list[str] = []

    class Counted(inference.FastViT):
        def __init__(self, model, path):
            built.append(path.name)
            super().__init__(model, path)

    monkeypatch.setattr(inference, "FastViT", Counted)
    first = extract_features(_load(), ds, cfg, progress=False)
    assert not first.from_cache and len(built) == (mode != "off")
    again = extract_features(_load(), ds, cfg, progress=False)  # a new process's backbone: nothing prepared yet
    assert again.from_cache and len(built) == (mode != "off") and torch.equal(again.cls, first.cls)
    want = {"off": "eager", "float32": "fast-float32-onednn"}.get(mode, f"fast-{mode}")  # float32 on CPU: oneDNN
    assert again.meta["path"] == first.meta["path"] == want


def test_a_compiled_fast_path_pickles_without_its_graphs():
    """`embed --workers 2` spawns workers with the backbone: a compiled FastViT held an unpicklable closure."""
    fb = _load()
    x = _x(fb)
    accelerate(fb, mode="float32", compile=False)
    fast = fb.model
    fast._compiled = lambda *a: None  # what a compile leaves: a local closure pickle cannot take
    fast._graphs.add((2, 32, 32, (3,), True, False))
    copy = pickle.loads(pickle.dumps(fb))
    assert copy.model._compiled is None and copy.model._graphs == set()
    assert "_fast_models" not in copy.__dict__ and "_fast_models" in fb.__dict__  # no second copy of the weights
    fast._compiled = None
    fast._graphs.clear()
    torch.testing.assert_close(copy.features(x)[1][0], fb.features(x)[1][0])


def test_each_prepared_model_compiles_through_its_own_code_object():
    """Dynamo's recompile limit (8) counts graphs per code object; one shared forward made the ninth backbone or
    shape of a process run uncompiled while reporting a compiled path."""
    from geodino.models.frozen import FastViT, _Core, _own_forward

    fb = _load()
    a, b = FastViT(fb.model).core, FastViT(fb.model).core
    fa, fb_ = _own_forward(a), _own_forward(b)
    assert fa.__func__.__code__ is not fb_.__func__.__code__ is not _Core.forward.__code__
    x = _x(fb)
    sin, cos = a.rope_tables(4, 4)
    with torch.no_grad():
        torch.testing.assert_close(fa(x, (3,), True, sin, cos)[0][0], a(x, (3,), True, sin, cos)[0][0])


def test_embeds_band_check_does_not_run_the_compiled_model(monkeypatch):
    """The tiny band-count forward ran through the compiled fast path and compiled a throwaway graph."""
    from geodino.embed.prepare import _probe_dim
    from geodino.models.frozen import FastViT

    fb = _load()
    accelerate(fb, mode="float32", compile=False)
    fast = fb.model

    def boom(*a, **k):
        raise AssertionError("the fast path ran")

    monkeypatch.setattr(FastViT, "_run", boom)
    assert _probe_dim(fb, [1, 3], "concat", True, "cpu") == (2 * fb.embed_dim, 2)
    assert fb.model is fast
