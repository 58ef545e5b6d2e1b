"""geodino.inference: a FrozenBackbone on the fast path gives the eager features; probes report the path."""

from __future__ import annotations

import torch

from geodino.backbones import load_backbone
from geodino.inference import accelerate, fast_backbone, path_of, prepare_embed
from geodino.models.frozen import FastViT


def test_accelerate_swaps_in_place_and_features_agree(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=4")
    x = fb.normalize(torch.rand(2, 3, 32, 32))
    maps, cls = fb.features(x, "four_last")
    eager = fb.model
    path = accelerate(fb, compile=False)
    assert path.name == "fast-float32-onednn" and isinstance(fb.model, FastViT) and path_of(fb) == path
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
    assert fast.meta["path"] == "fast-float32-onednn"
    eager = extract_features(fb, ds, FeatureConfig(layers="last", batch_size=2, cache=False, fast="off"))
    err = capsys.readouterr().err
    assert eager.meta["path"] == "eager" and "path eager, 5 images" in err, err  # not "path eager (eager)"
    assert torch.allclose(fast.cls, eager.cls, atol=1e-4) and torch.allclose(
        fast.patch_mean, eager.patch_mean, atol=1e-4
    )


def test_probe_features_size_the_compile_choice_by_the_images_fed(monkeypatch):
    """Probes give the job-size rule their image count at the size fed to the backbone (resized or native)."""
    import geodino.inference as inference
    from geodino.eval.datasets import ProbeDataset
    from geodino.eval.features import FeatureConfig, extract_features

    seen = []
    real = inference.fast_backbone
    monkeypatch.setattr(inference, "fast_backbone", lambda bb, **kw: seen.append(kw) or real(bb, **kw))
    ds = ProbeDataset(
        name="toy", root="/toy", split="train", classes=["a", "b"], bands=["R", "G", "B"], length=3,
        getter=lambda i: {"image": torch.rand(3, 40, 56), "label": torch.tensor(i % 2)},
    )  # fmt: skip
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1&patch_size=8")
    extract_features(fb, ds, FeatureConfig(layers="last", batch_size=3, cache=False, image_size=48), progress=False)
    extract_features(fb, ds, FeatureConfig(layers="last", batch_size=3, cache=False, image_size=0), progress=False)
    assert [(k["n_images"], k["image_size"]) for k in seen] == [(3, (48, 48)), (3, (40, 56))]


def test_prepare_embed_returns_the_metadata_to_record(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    meta = prepare_embed(fb, tile=32, batch_size=2, n_tiles=4, mode="bfloat16", compile=False)
    assert meta == {"inference_path": "fast-bfloat16", "inference_dtype": "bfloat16"}
    assert fb.features(torch.zeros(1, 3, 32, 32))[0][0].dtype == torch.float32
    monkeypatch.setenv("GEODINO_FAST", "0")
    fb2 = load_backbone("arch:vit_tiny?seed=0&depth=1")
    assert prepare_embed(fb2, tile=32, batch_size=2) == {"inference_path": "eager", "inference_dtype": "float32"}


def test_prepare_embed_hands_the_tile_count_and_shape_to_accelerate(monkeypatch):
    import geodino.inference as inference

    seen = []
    monkeypatch.setattr(inference, "accelerate", lambda bb, **kw: seen.append(kw) or path_of(bb))
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    prepare_embed(fb, tile=448, batch_size=2, n_tiles=500)
    prepare_embed(fb, tile=(112, 224), batch_size=2, n_tiles=10, mode="bfloat16", compile=True)
    prepare_embed(fb, tile=448, batch_size=2)
    assert [(k["n_images"], k["image_size"], k["mode"], k["compile"]) for k in seen] == [
        (500, (448, 448), "auto", None),
        (10, (112, 224), "bfloat16", True),
        (None, (448, 448), "auto", None),
    ]


def test_compile_min_images_per_device_dtype_and_image_size():
    """float32 on CPU repays a compile later at images over 224 px (attention, which the compile does not speed up,
    grows with the tokens); bf16, 224 px and smaller images, CUDA and unknown devices keep the per-device values."""
    from geodino.inference import compile_min_images

    assert compile_min_images("cpu", "float32") == 2_000
    assert compile_min_images("cpu", "float32", (112, 224)) == 2_000
    assert compile_min_images("cpu", "float32", (224, 240)) == 5_000
    assert compile_min_images("cpu", "float32", (512, 512)) == 5_000
    assert compile_min_images("cpu", "bfloat16", (512, 512)) == 2_000
    assert compile_min_images("cuda", "float32", (512, 512)) == 300_000
    assert compile_min_images("cuda", "bfloat16") == 300_000
    assert compile_min_images("mps", "float32") == 2_000


class _RecordedFastViT(torch.nn.Module):
    """Stands in for FastViT where only the path `accelerate` chose matters (no weights prepared, no device)."""

    def __init__(self, model, path):
        super().__init__()
        self.path = path

    def to(self, device):
        return self


def _chosen(monkeypatch, device: str, **kw):
    """The path `accelerate` returns for a fresh tiny backbone on `device` (a compiler present)."""
    import geodino.inference as inference
    import geodino.models.fast_choice as fast_choice

    monkeypatch.delenv("GEODINO_FAST", raising=False)
    monkeypatch.setattr(fast_choice, "_compiler_available", lambda d: True)
    monkeypatch.setattr(inference, "FastViT", _RecordedFastViT)
    monkeypatch.setattr(inference, "weights_device", lambda bb: torch.device(device))
    return accelerate(load_backbone("arch:vit_tiny?seed=0&depth=1"), **kw)


def test_accelerate_compiles_only_jobs_that_repay_the_warm_up(monkeypatch):
    """Job sizes count in 224 px image equivalents; the returned path says whether it compiles and why not."""

    def compiled(**kw):
        path = _chosen(monkeypatch, "cpu", **kw)
        assert path.enabled and path.dtype == kw.get("mode", "float32")
        assert path.reason == ("compiled" if path.compile else "compile off: job too small to repay the warm-up")
        return path.compile

    assert compiled(n_images=2_000) and not compiled(n_images=1_999)  # 224 px: the CPU threshold
    assert not compiled(n_images=7_999, image_size=(112, 112))  # 1,999 equivalents
    # float32 at 448 px: 500 images = 2,000 equivalents, under the large-image threshold; 1,250 = 5,000 reach it
    assert not compiled(n_images=500, image_size=(448, 448)) and compiled(n_images=1_250, image_size=(448, 448))
    assert compiled(n_images=500, image_size=(448, 448), mode="bfloat16")  # bf16 keeps the generic threshold
    assert compiled(n_images=None)  # job size unknown: compile
    assert compiled(n_images=10, compile=True)  # an explicit choice is kept
    assert not _chosen(monkeypatch, "cpu", compile=False, n_images=10**6).compile


def test_the_compile_threshold_is_per_device_type(monkeypatch):
    """A job of 10,000 images compiles on CPU but not on CUDA, where the warm-up repays only after ~300k images."""
    for dev in ("cpu", "cuda"):
        small, large = _chosen(monkeypatch, dev, n_images=10_000), _chosen(monkeypatch, dev, n_images=400_000)
        forced = _chosen(monkeypatch, dev, n_images=10, compile=True)
        assert (small.compile, large.compile, forced.compile) == (dev == "cpu", True, True)
        assert small.dtype == ("float32" if dev == "cpu" else "bfloat16")  # CUDA's auto mode: bf16


def test_accelerate_reuses_the_prepared_model_after_a_restore(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    eager = fb.model
    with fast_backbone(fb, compile=False):
        first = fb.model
    with fast_backbone(fb, compile=False):
        assert fb.model is first  # prepared (and compiled) once per backbone object and path
    with fast_backbone(fb, n_images=10) as small:  # compile off for the job size: the same computation
        assert fb.model is first and small.reason.startswith("compile off: job too small")
        assert path_of(fb).reason == small.reason  # the held model reports the current reason
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
    assert err[path_line].endswith("(float32; compile off: job too small to repay the warm-up)")  # why uncompiled
    assert "(AMX); --bf16 made feature rasters" in err[path_line + 1]
    with rasterio.open(out) as r:
        assert not any("bf16 in hardware" in v for v in r.tags().values())
    embed_raster(src, bb, tmp_path / "g.tif", tile=32, overlap=0, amp=True)
    assert "bf16 in hardware" not in capsys.readouterr().err
