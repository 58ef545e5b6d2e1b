"""Where the dense probes' tensors live when the backbone is on an accelerator, checked without one.

The bug: heads were built on the CPU and never moved, while the features came back on the backbone's device, so a
GPU backbone crashed at the first training step (and `cache_features=disk` earlier, at `.numpy()`). Two stand-ins:

- `meta` as the backbone's device: a fresh tiny backbone with one `meta` parameter, so `head_device` names `meta`;
  the heads, their batches and targets must arrive there (recorded at the head's forward and at the loss, which
  then stops the run: meta tensors have shapes but no values);
- `Remote`: a tensor on a stand-in accelerator. Mixing it with a host tensor raises and `.numpy()` refuses it, as
  CUDA does; `.cpu()` brings it back. Features and predictions given as `Remote` must reach the host before the
  feature store, the sliding-window accumulators and the metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from geodino.eval import canopy, dense, detection, segmentation
from geodino.eval.head_training import FeatureStore, extract
from geodino.eval.heads import LinearHead
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_canopy import write_chm, write_image
from tests.eval.test_detection import _scene, _small_cfg
from tests.eval.test_segmentation import make_folder

META = torch.device("meta")


class Remote(torch.Tensor):
    """A tensor on a stand-in accelerator: any op mixing it with a host tensor (0-d scalars aside) raises, as a
    device mismatch does on CUDA; `.numpy()` refuses it; `.cpu()` / `.to('cpu')` return a plain host tensor."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            flat = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            mixed = any(type(t) is not cls and t.dim() > 0 for t in flat)
            to = kwargs.get("device", args[1] if len(args) > 1 else None)
            to_host = func is torch.Tensor.cpu or (
                func is torch.Tensor.to and isinstance(to, str | torch.device) and torch.device(to).type == "cpu"
            )
            if to_host:
                return func(*args, **kwargs).as_subclass(torch.Tensor)
        if func is torch.Tensor.numpy:
            raise TypeError("can't convert a Remote (accelerator) tensor to numpy: copy it to the host first")
        if mixed:
            raise RuntimeError(f"{func.__name__}: expected all tensors to be on the same device (Remote and host)")
        return super().__torch_function__(func, types, args, kwargs)


def remote(t: torch.Tensor) -> Remote:
    return t.as_subclass(Remote)  # type: ignore[return-value]


def is_host(t: Any) -> bool:
    return type(t) is torch.Tensor and t.device.type == "cpu"


class Stop(Exception):
    """Ends a probe run once what it placed has been recorded."""


class Recorder:
    """Devices seen at a head's forward (its inputs, parameters and buffers) and at the loss (its inputs: the
    predictions, the targets)."""

    def __init__(self) -> None:
        self.seen: dict[str, set[torch.device]] = {}

    def add(self, where: str, *objs: Any) -> None:
        devices = {t.device for t in tree_flatten(objs)[0] if isinstance(t, torch.Tensor)}
        self.seen.setdefault(where, set()).update(devices)

    def watch(self, module: nn.Module, where: str = "forward", stop: bool = False) -> nn.Module:
        def hook(m: nn.Module, args: Any, kwargs: Any) -> None:
            self.add(where, args, kwargs, list(m.parameters()), list(m.buffers()))
            if stop:
                raise Stop

        module.register_forward_pre_hook(hook, with_kwargs=True)
        return module

    def loss(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.add("loss", args, kwargs)
        raise Stop

    def stop_at_a_meta_value(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The first time the run needs the value of a meta tensor (`bool(t)`: segmentation's check that a batch
        has labelled pixels, computed from its masks), record its device as the loss's and stop."""
        real = torch.Tensor.__bool__

        def bool_(t: torch.Tensor) -> bool:
            if t.is_meta:
                self.add("loss", t)
                raise Stop
            return real(t)

        monkeypatch.setattr(torch.Tensor, "__bool__", bool_)


def backbone_on_meta(bands: int = 3) -> Any:
    """A tiny backbone whose weights report `meta` (its first parameter is there), standing in for a GPU. Its
    features are computed on the host (meta cannot compute) and given on the device of its input."""
    from geodino.backbones import load_backbone

    bb = load_backbone(f"arch:vit_tiny?seed=0&patch_size=8&bands={bands}")
    bb.register_parameter("stand_in", nn.Parameter(torch.zeros(1, device=META), requires_grad=False))
    real = bb.features

    def features(x: torch.Tensor, layers: Any = "last", norm: bool = True) -> Any:
        maps, cls = real(torch.zeros(x.shape) if x.is_meta else x, layers, norm)
        return [m.to(x.device) for m in maps], [c.to(x.device) for c in cls]

    bb.features = features
    return bb


# ----------------------------------------------------------------------------------------------- helpers


def test_head_device_to_device_to_host_and_host_state():
    from geodino.eval.head_training import head_device, host_state, to_device, to_host

    assert head_device(backbone_on_meta()) == META
    assert head_device(tiny_backbone()) == torch.device("cpu")
    assert head_device(object()) == torch.device("cpu")  # a duck-typed backbone without weights

    batch = {"maps": [torch.ones(2, 3)], "pair": (torch.zeros(1), 7), "name": "a"}
    moved = to_device(batch, META)
    assert moved["maps"][0].device == META and moved["pair"][0].device == META
    assert isinstance(moved["pair"], tuple) and moved["pair"][1] == 7 and moved["name"] == "a"
    assert to_device(batch["maps"][0], "cpu") is batch["maps"][0]  # already there: no copy

    back = to_host({"boxes": [remote(torch.arange(4.0))], "pair": (remote(torch.ones(2)), 1)})
    assert is_host(back["boxes"][0]) and torch.equal(back["boxes"][0], torch.arange(4.0))
    assert is_host(back["pair"][0]) and back["pair"][1] == 1

    m = nn.BatchNorm1d(2)
    m.register_buffer("extra", remote(torch.ones(2)))
    state = host_state(m)
    assert all(is_host(v) for v in state.values()) and hasattr(state, "_metadata")
    fresh = nn.BatchNorm1d(2)
    fresh.register_buffer("extra", torch.zeros(2))
    fresh.load_state_dict(state)  # a head trained on an accelerator loads on the host
    assert torch.equal(fresh.extra, torch.ones(2))


# ----------------------------------------------------------------------------------------------- training placement


def test_segmentation_head_batches_and_masks_follow_the_backbone_device(tmp_path, monkeypatch):
    """The UPerNet head, each batch of cached features and its masks reach the backbone's device."""
    rec = Recorder()
    real_build = segmentation.build_head
    monkeypatch.setattr(segmentation, "build_head", lambda *a, **k: rec.watch(real_build(*a, **k)))
    monkeypatch.setattr(segmentation.F, "cross_entropy", rec.loss)
    rec.stop_at_a_meta_value(monkeypatch)
    img, msk = make_folder(tmp_path)
    cfg = segmentation.SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, head="upernet", crop_size=32, channels=16,
        epochs=1, min_steps=1, batch_size=2, plots=0, progress=False,
    )  # fmt: skip
    with pytest.raises(Stop):
        segmentation.run_segmentation(backbone_on_meta(), cfg, tmp_path / "out")
    assert rec.seen == {"forward": {META}, "loss": {META}}


@pytest.mark.parametrize("cache", ["memory", "disk", "none"])
def test_canopy_head_batches_and_targets_follow_the_backbone_device(tmp_path, monkeypatch, cache):
    """The DPT head, its height decoder, each batch (from every kind of feature store) and its targets."""
    rec = Recorder()
    real_build = canopy.build_model
    monkeypatch.setattr(canopy, "build_model", lambda *a, **k: rec.watch(real_build(*a, **k)))
    monkeypatch.setattr(canopy, "height_loss", rec.loss)
    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif")
    cfg = canopy.CanopyProbeConfig(
        train_images=[str(tmp_path / "a.tif")], train_chms=[str(tmp_path / "a_CHM.tif")], crop_size=32, epochs=1,
        min_steps=1, batch_size=2, layers="four_last", n_bins=8, dpt_channels=16, cache_features=cache, progress=False,
    )  # fmt: skip
    with pytest.raises(Stop):
        canopy.run_canopy(backbone_on_meta(), cfg, tmp_path / "out")
    assert rec.seen == {"forward": {META}, "loss": {META}}


def test_detector_images_and_targets_follow_the_backbone_device(tmp_path, monkeypatch):
    """The pyramid and Faster R-CNN heads, each batch of tiles and its boxes and labels."""
    rec = Recorder()
    real_build = detection.build_detector
    monkeypatch.setattr(detection, "build_detector", lambda *a, **k: rec.watch(real_build(*a, **k), stop=True))
    _scene(tmp_path)
    with pytest.raises(Stop):
        detection.run_detection(backbone_on_meta(), _small_cfg(tmp_path, progress=False), tmp_path / "out")
    assert rec.seen == {"forward": {META}}


# ----------------------------------------------------------------------------------------------- back to the host


class RemoteFeatures:
    """A backbone whose features come back on the accelerator (`Remote`), as a FrozenBackbone's on a GPU do."""

    def __init__(self) -> None:
        self.inner = tiny_backbone()
        self.patch_size = self.inner.patch_size

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.normalize(x)

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> Any:
        maps, cls = self.inner.features(x, layers, norm)
        return [remote(m) for m in maps], [remote(c) for c in cls]


@pytest.mark.parametrize("mode", ["memory", "disk", "none"])
def test_feature_store_keeps_features_on_the_host(tmp_path, mode):
    """disk called `.numpy()` on accelerator features; memory kept them there. Both now copy them back once (as
    float16, the values unchanged); `get` gives host batches, or the batch on the device asked for."""
    tiles = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    store = FeatureStore.from_tiles(RemoteFeatures(), tiles, "four_last", mode, tmp_path / "c", 2, progress=False)
    maps, cls = store.get([4, 0, 2])
    assert all(is_host(t) for t in [*maps, *cls]) and len(maps) == len(cls) == 4
    kept = tiles.half().float() if mode == "none" else tiles  # `none` keeps float16 tiles, the others features
    want_maps, want_cls = extract(tiny_backbone(), kept[[4, 0, 2]], "four_last")
    for got, want in zip([*maps, *cls], [*want_maps, *want_cls]):
        torch.testing.assert_close(got, want if mode == "none" else want.half().float(), atol=0, rtol=0)
    on_meta, _ = store.get([1], META)
    assert on_meta[0].device == META and on_meta[0].dtype == torch.float32


class RemoteHead(nn.Module):
    """A head on the accelerator: its output is `Remote`."""

    def __init__(self, dim: int, n_out: int) -> None:
        super().__init__()
        self.inner = LinearHead([dim], n_out).eval()

    def forward(self, maps: list[torch.Tensor], cls: list[torch.Tensor]) -> torch.Tensor:
        return remote(self.inner(maps, cls))


def test_sliding_window_and_head_predict_bring_predictions_to_the_host():
    """Window predictions on the accelerator were added into host accumulators (a device mismatch); a whole-image
    prediction came back on the accelerator. Both are now host tensors equal to the host computation."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 1)
    image = torch.rand(3, 50, 70)
    with torch.no_grad():
        want = dense.sliding_window(conv, image, crop=32, stride=20, batch_size=3)
        for img, w in ((image, want), (image[:, :20, :30], conv(image[None, :, :20, :30])[0])):
            got = dense.sliding_window(lambda x: remote(conv(x)), img, crop=32, stride=20, batch_size=3)
            assert is_host(got) and torch.equal(got, w)
    bb = tiny_backbone()
    head = RemoteHead(bb.embed_dim, 3)
    x = torch.rand(2, 3, 20, 28)
    got = dense.head_predict(bb, head, "last")(x)
    assert is_host(got) and got.shape == (2, 3, 20, 28)
    assert torch.equal(got, dense.head_predict(bb, head.inner, "last")(x))


def test_canopy_heights_are_decoded_on_the_device_and_come_back_to_the_host():
    """Canopy scoring called `.numpy()` on the predicted heights; the decoder (bins on the device) now runs next to
    the head and the metres come back to the host."""
    from geodino.eval.height_head import CanopyModel, HeightDecoder

    bb = tiny_backbone()
    torch.manual_seed(0)
    on_device = CanopyModel(RemoteHead(bb.embed_dim, 8), HeightDecoder("mixlog", 8, 0.001, 96.0))
    on_device.decoder.bins = remote(on_device.decoder.bins)  # the decoder sits on the device too
    on_host = CanopyModel(on_device.head.inner, HeightDecoder("mixlog", 8, 0.001, 96.0))
    x = torch.rand(1, 3, 24, 24)
    got = canopy.height_predictor(bb, on_device, "last")(x)
    assert is_host(got) and got.shape == (1, 1, 24, 24)
    assert torch.equal(got, canopy.height_predictor(bb, on_host, "last")(x))
    assert np.isfinite(got.numpy()).all()


class RemoteDetector(nn.Module):
    """A detector on the accelerator: two boxes per window, given as `Remote`."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = {"boxes": torch.tensor([[1.0, 2.0, 5.0, 6.0], [3.0, 3.0, 9.0, 9.0]]), "scores": torch.tensor([0.9, 0.8])}
        out["labels"] = torch.tensor([1, 2])
        return [{k: remote(v) for k, v in out.items()} for _ in images]


@pytest.mark.parametrize("size", [16, 40])
def test_detections_come_back_to_the_host(size):
    """Window boxes on the accelerator were shifted by a host offset (a device mismatch) and whole-image ones were
    returned on it (then scored and exported from there); both are now host tensors."""
    cfg = detection.DetectionProbeConfig(tile_size=32, tile_overlap=8)
    pred = detection.predict_image(RemoteDetector(), torch.rand(3, size, size), cfg)
    assert all(is_host(pred[k]) for k in ("boxes", "scores", "labels"))
    assert set(pred["labels"].tolist()) == {0, 1} and len(pred["boxes"]) >= 2  # Faster R-CNN's class 0 is gone
    assert pred["boxes"].max() <= size and pred["boxes"].min() >= 1  # windows shifted onto the image
