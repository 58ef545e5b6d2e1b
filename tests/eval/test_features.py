"""Frozen feature extraction: shapes, the on-disk cache (hits, keys, corrupt files) and bad input."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import ConfigError, InputError
from geodino.eval.datasets import ProbeDataset
from geodino.eval.features import FeatureConfig, cache_key, extract_features, resolve_image_size
from tests.eval.tiny_backbone import TinyBackbone


def make_ds(n: int = 6, size: int = 16, chans: int = 3, split: str = "train", sizes=None) -> ProbeDataset:
    g = torch.Generator().manual_seed(1)
    imgs = [torch.rand(chans, *(sizes[i] if sizes else (size, size)), generator=g) for i in range(n)]
    return ProbeDataset(
        name="toy", root="/toy", split=split, classes=["a", "b"], bands=[f"b{i}" for i in range(chans)],
        length=n, getter=lambda i: {"image": imgs[i], "label": torch.tensor(i % 2)},
    )  # fmt: skip


def test_features_shapes_and_values_match_a_direct_forward(tmp_path):
    bb, ds = TinyBackbone(), make_ds()
    fs = extract_features(bb, ds, FeatureConfig(layers="four_last", batch_size=4, cache=False), progress=False)
    assert fs.cls.shape == (6, 4, 8) and fs.patch_mean.shape == (6, 4, 8)
    assert fs.targets.tolist() == [0, 1, 0, 1, 0, 1]
    x = bb.normalize(torch.stack([ds[i]["image"] for i in range(6)]))
    maps, cls = bb.features(x, layers="four_last")
    assert torch.allclose(fs.cls[:, 2], cls[2], atol=1e-6)
    assert torch.allclose(fs.patch_mean[:, 3], maps[3].mean((2, 3)), atol=1e-6)
    assert fs.linear_input(1, False).shape == (6, 8)
    assert fs.linear_input(4, True).shape == (6, 40)
    assert torch.equal(fs.linear_input(4, True)[:, 32:], fs.patch_mean[:, -1])


def test_cache_hit_skips_the_backbone_and_returns_the_same_features(tmp_path):
    bb, ds = TinyBackbone(), make_ds()
    cfg = FeatureConfig(layers="four_last", batch_size=4, cache_dir=str(tmp_path))
    first = extract_features(bb, ds, cfg, progress=False)
    calls = bb.calls
    assert calls == 2 and not first.from_cache and len(list(tmp_path.glob("*.safetensors"))) == 1
    second = extract_features(bb, ds, cfg, progress=False)
    assert bb.calls == calls and second.from_cache
    assert torch.equal(first.cls, second.cls) and torch.equal(first.targets, second.targets)
    assert second.layers == "four_last"
    # a truncated cache file is recomputed, not trusted
    path = next(tmp_path.glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:50])
    third = extract_features(bb, ds, cfg, progress=False)
    assert not third.from_cache and torch.equal(third.cls, first.cls) and bb.calls == calls + 2


def test_cache_key_changes_with_weights_data_transform_and_layers():
    a, b = TinyBackbone(seed=0), TinyBackbone(seed=1)
    base = cache_key(a, "ds|train", "resize=16x16", "last")
    assert base == cache_key(a, "ds|train", "resize=16x16", "last")
    others = [
        cache_key(b, "ds|train", "resize=16x16", "last"),
        cache_key(a, "ds|val", "resize=16x16", "last"),
        cache_key(a, "ds|train", "resize=32x32", "last"),
        cache_key(a, "ds|train", "resize=16x16", [1, 3]),
    ]
    assert len({base, *others}) == 5


def test_resize_rounds_native_size_to_the_patch_grid():
    assert resolve_image_size(0, (20, 17), 8) == (24, 24)
    assert resolve_image_size(32, (20, 17), 8) == (32, 32)
    with pytest.raises(ConfigError, match="image_size=30 is not a multiple of the patch size 8; use 32"):
        resolve_image_size(30, (20, 20), 8)
    bb = TinyBackbone()
    fs = extract_features(bb, make_ds(size=20), FeatureConfig(layers="last", cache=False), progress=False)
    assert fs.cls.shape == (6, 1, 8)


def test_band_mismatch_suggests_band_adaptation():
    with pytest.raises(InputError, match=r"backbone tiny:0 takes 3 bands but toy has 13 .*adapt the backbone's patch "
                       r"embedding to the data's bands.*with the task's data.bands \(tasks.NAME.data.bands\) "
                       r"\(e.g. \[rgb\]\)$"):  # fmt: skip
        extract_features(TinyBackbone(), make_ds(chans=13), FeatureConfig(cache=False), progress=False)
    # more backbone bands than the data has: selecting data bands cannot help, so it is not suggested
    with pytest.raises(InputError, match=r"takes 6 bands but toy has 3 .*'\?bands=3' for an arch: spec\)$"):
        extract_features(TinyBackbone(in_chans=6), make_ds(chans=3), FeatureConfig(cache=False), progress=False)


def test_images_of_different_sizes_need_image_size():
    ds = make_ds(n=2, sizes=[(16, 16), (24, 24)])
    with pytest.raises(InputError, match=r"different sizes \(\(16, 16\) and \(24, 24\)\); set features.image_size"):
        extract_features(TinyBackbone(), ds, FeatureConfig(cache=False, batch_size=2), progress=False)
    fs = extract_features(TinyBackbone(), ds, FeatureConfig(cache=False, batch_size=2, image_size=16), progress=False)
    assert fs.cls.shape[0] == 2


def test_a_cuda_backbone_gets_page_locked_batches(monkeypatch):
    """On a GPU the loader pins its batches, so the non-blocking copy to the device is asynchronous (the features
    are copied back without waiting, awaited once at the end); on a CPU it does not (pinning needs CUDA)."""
    import geodino.eval.features as features

    seen: list[bool] = []

    class Stop(Exception):
        pass

    def loader(*args, **kwargs):
        seen.append(kwargs.get("pin_memory", False))
        raise Stop

    monkeypatch.setattr(features, "DataLoader", loader)
    cfg = FeatureConfig(batch_size=4, cache=False)
    for device in ("cpu", "cuda"):
        monkeypatch.setattr(features, "weights_device", lambda bb, d=device: torch.device(d))
        with pytest.raises(Stop):
            extract_features(TinyBackbone(), make_ds(), cfg, progress=False)
    assert seen == [False, True]


def test_cache_keys_name_bf16_on_any_device_and_keep_float32_keys():
    """The key named the dtype only for int8, or for bf16 on the CPU: a GPU run with `fast: float32` read features
    cached by a default-bf16 GPU run, and vice versa. bf16 now has its own entry on every device; float32 keeps
    the key it always had (existing caches stay valid) and shares it across devices (the same numerics)."""
    from geodino.eval.features import _cache_entry

    bb, size, layers = TinyBackbone(), (16, 16), "last"
    plain = "resize=16x16,bilinear,antialias;normalize=backbone"
    keys = {
        (dtype, dev): _cache_entry(bb, "ds|train", size, dtype, torch.device(dev), layers)
        for dtype in ("float32", "bfloat16", "int8")
        for dev in ("cpu", "cuda", "mps")
    }
    for dev in ("cpu", "cuda", "mps"):
        assert keys["float32", dev] == (plain, cache_key(bb, "ds|train", plain, layers))  # as before
        assert keys["bfloat16", dev][0] == plain + ";dtype=bfloat16"
        assert len({keys[d, dev][1] for d in ("float32", "bfloat16", "int8")}) == 3
        assert keys["bfloat16", dev] == keys["bfloat16", "cpu"]  # the key names numerics, not where they ran


def test_a_bf16_gpu_run_does_not_read_float32_features(tmp_path, monkeypatch):
    """End to end on a faked CUDA device: float32 features cached, then a bf16-autocast run of the same backbone
    (the GPU default) must compute its own instead of reading them (it reached the loader: Stop)."""
    import geodino.eval.features as features

    class Stop(Exception):
        pass

    bb, ds = TinyBackbone(), make_ds()
    cfg = FeatureConfig(layers="last", batch_size=4, cache_dir=str(tmp_path))
    assert not extract_features(bb, ds, cfg, progress=False).from_cache  # float32, cached
    monkeypatch.setattr(features, "weights_device", lambda b: torch.device("cuda"))
    monkeypatch.setattr(features, "DataLoader", lambda *a, **k: (_ for _ in ()).throw(Stop()))
    bb.amp = True  # the eager model autocasts to bf16, as on a GPU by default
    with pytest.raises(Stop):
        extract_features(bb, ds, cfg, progress=False)
    bb.amp = False  # float32 on the GPU reads the float32 entry
    assert extract_features(bb, ds, cfg, progress=False).from_cache


def test_bf16_features_cached_under_a_float32_key_before_are_not_read(tmp_path):
    """Entries a GPU's bf16 fast path wrote under the plain key (before bf16 was keyed apart) record that path:
    a float32 run recomputes them instead of reading bf16 features; float32 entries are read as before."""
    import geodino.eval.features as features

    bb, ds = TinyBackbone(), make_ds()
    cfg = FeatureConfig(layers="last", batch_size=4, cache_dir=str(tmp_path))
    first = extract_features(bb, ds, cfg, progress=False)
    assert extract_features(bb, ds, cfg, progress=False).from_cache
    for path, read in (("fast-float32-compiled", True), ("fast-bfloat16-compiled", False), ("fast-int8", False)):
        first.meta["path"] = path
        features._save(tmp_path / f"{first.key}.safetensors", first)
        assert extract_features(bb, ds, cfg, progress=False).from_cache is read, path


def test_entries_of_an_older_cache_version_are_recomputed(tmp_path, monkeypatch):
    """Version 3: an eager bf16 GPU run had cached its features under the float32 key with nothing in the entry to
    tell (its path reads 'eager'), so every entry written before is recomputed once; a current one is read."""
    import geodino.eval.features as features

    bb, ds = TinyBackbone(), make_ds()
    cfg = FeatureConfig(layers="last", batch_size=4, cache_dir=str(tmp_path))
    assert features.CACHE_VERSION >= 3  # entries of version 2 may hold a GPU's bf16 features under a float32 key
    monkeypatch.setattr(features, "CACHE_VERSION", 2)
    extract_features(bb, ds, cfg, progress=False)  # written as version 2
    monkeypatch.setattr(features, "CACHE_VERSION", 3)
    assert not extract_features(bb, ds, cfg, progress=False).from_cache
    assert extract_features(bb, ds, cfg, progress=False).from_cache


def test_cache_key_follows_the_blocks_a_layer_name_resolves_to(monkeypatch):
    """A cache written when `four_even` stood for other blocks (before cd448c2 on depths not divisible by 4) is
    not read: the key holds the resolved block indices, not only the name."""
    import geodino.backbones.layers as layer_sets

    bb = TinyBackbone(seed=0)
    assert isinstance(bb.n_blocks, int)
    now = cache_key(bb, "ds|train", "resize=16x16", "four_last")
    real = layer_sets.layer_indices
    monkeypatch.setattr(layer_sets, "layer_indices", lambda layers, n, **kw: [0] * len(real(layers, n, **kw)))
    assert cache_key(bb, "ds|train", "resize=16x16", "four_last") != now
    monkeypatch.setattr(layer_sets, "layer_indices", real)
    assert cache_key(bb, "ds|train", "resize=16x16", "four_last") == now
