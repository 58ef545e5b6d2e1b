"""geodino.inference: a FrozenBackbone on the fast path gives the eager features; probes report the path."""

from __future__ import annotations

import torch

from geodino.backbones import load_backbone
from geodino.inference import accelerate, fast_backbone, path_of, prepare_embed
from geodino.models.frozen import FastViT


def test_accelerate_swaps_in_place_and_features_agree(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=2")
    x = fb.normalize(torch.rand(2, 3, 32, 32))
    maps, cls = fb.features(x, "four_last")
    eager = fb.model
    path = accelerate(fb, compile=False)
    assert path.name == "fast-float32" and isinstance(fb.model, FastViT) and path_of(fb) == path
    assert not any(n.startswith("_eager_model") for n, _ in fb.named_modules())  # not a hidden submodule
    maps2, cls2 = fb.features(x, "four_last")
    for a, b in zip(maps + cls, maps2 + cls2):
        assert (a - b).abs().max().item() < 1e-4
    assert accelerate(fb) == path  # idempotent
    del eager


def test_fast_backbone_restores_and_skips_small_compiles(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    eager = fb.model
    with fast_backbone(fb, n_images=10) as path:
        assert isinstance(fb.model, FastViT) and not path.compile  # 10 images: not worth a compile
    assert fb.model is eager and path_of(fb).name == "eager"
    with fast_backbone(fb, mode="off") as path:
        assert not path.enabled and fb.model is eager


def test_probe_features_print_the_path_and_throughput(capsys, monkeypatch):
    from geodino.eval.datasets import ProbeDataset
    from geodino.eval.features import FeatureConfig, extract_features

    monkeypatch.delenv("GEODINO_FAST", raising=False)
    imgs = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    ds = ProbeDataset(
        name="toy", root="/toy", split="train", classes=["a", "b"], bands=["R", "G", "B"], length=5,
        getter=lambda i: {"image": imgs[i], "label": torch.tensor(i % 2)},
    )  # fmt: skip
    fb = load_backbone("arch:vit_tiny?seed=0&depth=2")
    fast = extract_features(fb, ds, FeatureConfig(layers="last", batch_size=2, cache=False), desc="toy")
    err = capsys.readouterr().err
    assert "toy: path fast-float32" in err and "5 images" in err and "img/s" in err
    assert fast.meta["path"] == "fast-float32"
    eager = extract_features(fb, ds, FeatureConfig(layers="last", batch_size=2, cache=False, fast="off"))
    assert eager.meta["path"] == "eager" and "path eager" in capsys.readouterr().err
    assert torch.allclose(fast.cls, eager.cls, atol=1e-4) and torch.allclose(
        fast.patch_mean, eager.patch_mean, atol=1e-4
    )


def test_prepare_embed_returns_the_metadata_to_record(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    meta = prepare_embed(fb, tile=32, batch_size=2, n_tiles=4, mode="bfloat16", compile=False)
    assert meta == {"inference_path": "fast-bfloat16", "inference_dtype": "bfloat16"}
    assert fb.features(torch.zeros(1, 3, 32, 32))[0][0].dtype == torch.float32
    monkeypatch.setenv("GEODINO_FAST", "0")
    fb2 = load_backbone("arch:vit_tiny?seed=0&depth=1")
    assert prepare_embed(fb2, tile=32, batch_size=2) == {"inference_path": "eager", "inference_dtype": "float32"}


def test_prepare_embed_counts_tiles_in_224_px_images_for_the_compile_choice(monkeypatch):
    import geodino.inference as inference

    seen = []
    monkeypatch.setattr(inference, "accelerate", lambda bb, **kw: seen.append(kw["n_images"]) or path_of(bb))
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=500)
    prepare_embed(fb, tile=(112, 224), batch_size=2, n_tiles=10)
    prepare_embed(fb, tile=448, batch_size=2)
    assert seen == [2000, 5, None]  # 500 tiles of 448 px = 2000 images of 224 px: enough to compile


def test_float32_feature_rasters_on_cpu_compile_only_past_their_own_threshold(monkeypatch):
    """embed's float32 CPU forward gains too little at 512 px tiles to repay the warm-up at the generic threshold:
    2,000 images stay uncompiled, 10,000 are left to the generic rule (which compiles them); bf16, explicit choices
    and other devices are untouched."""
    import geodino.inference as inference

    monkeypatch.delenv("GEODINO_FAST", raising=False)
    seen = []
    monkeypatch.setattr(inference, "accelerate", lambda bb, **kw: seen.append(kw["compile"]) or path_of(bb))
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    assert inference.EMBED_CPU_FLOAT32_COMPILE_MIN_IMAGES == 5_000
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=500)  # 2,000 images of 224 px, float32 on CPU
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=2_500)  # 10,000
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=500, mode="bfloat16")
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=500, compile=True)
    prepare_embed(fb, tile=448, batch_size=2)  # job size unknown: the generic rule decides
    monkeypatch.setattr(inference, "_device", lambda bb: torch.device("cuda"))
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=500)  # not a CPU: the device's own threshold decides
    assert seen == [False, None, None, True, None, None]


def test_the_compile_threshold_is_per_device_type(monkeypatch):
    """A job of 10,000 images compiles on CPU but not on CUDA, where the warm-up repays only after ~300k images."""
    import geodino.inference as inference

    asked = []

    def fake_choose(device, mode, compile, amp):
        asked.append((torch.device(device).type, compile))
        return inference.FastPath(False)

    monkeypatch.setattr(inference, "choose_path", fake_choose)
    for dev in ("cpu", "cuda"):
        monkeypatch.setattr(inference, "_device", lambda bb, dev=dev: torch.device(dev))
        fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
        accelerate(fb, n_images=10_000)
        accelerate(fb, n_images=400_000)
        accelerate(fb, n_images=10, compile=True)  # an explicit choice is kept
    assert asked == [("cpu", None), ("cpu", None), ("cpu", True), ("cuda", False), ("cuda", None), ("cuda", True)]


def test_accelerate_reuses_the_prepared_model_after_a_restore(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    eager = fb.model
    with fast_backbone(fb, compile=False):
        first = fb.model
    with fast_backbone(fb, compile=False):
        assert fb.model is first  # prepared (and compiled) once per backbone object and path
    with fast_backbone(fb, mode="bfloat16", compile=False):
        assert fb.model is not first and fb.model.path.dtype == "bfloat16"
    fb.model = build_new = load_backbone("arch:vit_tiny?seed=1&depth=1").model
    with fast_backbone(fb, compile=False):
        assert fb.model is not first  # a different eager model is prepared anew
    fb.model = eager
    del build_new


def _native_bf16(monkeypatch, amx: bool, avx512_bf16: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)


def test_bf16_hint_only_for_large_float32_cpu_jobs_on_native_bf16_cpus(monkeypatch):
    """The --bf16 suggestion names the CPU feature, and stays silent for bf16 jobs, small or unsized jobs, a mode
    forced with GEODINO_FAST, other backbones and CPUs without native bf16 products."""
    from geodino.inference import BF16_HINT_MIN_IMAGES, cpu_bf16_hint, native_bf16_cpu

    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    big = BF16_HINT_MIN_IMAGES
    _native_bf16(monkeypatch, amx=True, avx512_bf16=True)
    assert native_bf16_cpu() == "AMX"
    hint = cpu_bf16_hint(fb, "float32", big)
    assert hint is not None and "(AMX)" in hint and "--bf16" in hint and "docs/fast_inference.md" in hint
    assert cpu_bf16_hint(fb, "bfloat16", big) is None
    assert cpu_bf16_hint(fb, "float32", big - 1) is None and cpu_bf16_hint(fb, "float32", None) is None
    _native_bf16(monkeypatch, amx=False, avx512_bf16=True)
    assert "(AVX-512 BF16)" in cpu_bf16_hint(fb, "float32", big)
    _native_bf16(monkeypatch, amx=False, avx512_bf16=False)
    assert native_bf16_cpu() is None and cpu_bf16_hint(fb, "float32", big) is None
    _native_bf16(monkeypatch, amx=True, avx512_bf16=False)
    monkeypatch.setenv("GEODINO_FAST", "float32")  # the user chose the path: no advice
    assert cpu_bf16_hint(fb, "float32", big) is None
    monkeypatch.delenv("GEODINO_FAST")
    monkeypatch.setattr(fb, "kind", "timm")
    assert cpu_bf16_hint(fb, "float32", big) is None


def test_embed_prints_the_bf16_hint_after_the_path_line(tmp_path, monkeypatch, capsys):
    """`geodino embed` prints the hint on a large float32 CPU job (threshold lowered to this tiny raster), not under
    --bf16; the hint is not recorded in the raster."""
    import rasterio

    import geodino.inference as inference
    from geodino.embed import embed_raster
    from tests.embed.conftest import random_image, write_tif

    monkeypatch.delenv("GEODINO_FAST", raising=False)
    monkeypatch.setattr(inference, "BF16_HINT_MIN_IMAGES", 0)
    _native_bf16(monkeypatch, amx=True, avx512_bf16=True)
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    bb = "arch:vit_tiny?depth=1&patch_size=8"
    out = embed_raster(src, bb, tmp_path / "f.tif", tile=32, overlap=0)  # 1 tile: no compile
    err = capsys.readouterr().err.splitlines()
    path_line = next(i for i, line in enumerate(err) if line.startswith("geodino: inference path fast-float32"))
    assert "(AMX); --bf16 made feature rasters" in err[path_line + 1]
    with rasterio.open(out) as r:
        assert not any("bf16 in hardware" in v for v in r.tags().values())
    embed_raster(src, bb, tmp_path / "g.tif", tile=32, overlap=0, amp=True)
    assert "bf16 in hardware" not in capsys.readouterr().err
