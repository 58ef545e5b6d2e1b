"""The batched colour step of a 3-band sensor stored in another band order than R, G, B (a B02, B03, B04 selection)
reorders the bands without list indexing: `x[:, [2, 1, 0]]` builds its index tensor on the host and copies it to the
crops' device with a blocking copy (a wait for the GPU twice per crop set every step under `crops.photometric:
device`; gpu.sh part 0 counts them). That copy happens below torch's dispatch modes, so on the CPU the test looks for
the advanced-indexing op itself: the reorder must be slices (and the colour step runs on the meta device)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from geodino.data.augment import draw_rgb_params
from geodino.data.config import CropsConfig
from geodino.data.crops import MultiCropTransform
from geodino.data.sensors import Sensor

BGR = Sensor("bgr", ("blue", "green", "red"), 1.0, (0.3, 0.4, 0.5), (0.2, 0.2, 0.2), True)


class _Ops(TorchDispatchMode):
    """Records the aten ops dispatched."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _params(n: int) -> torch.Tensor:
    cfg = CropsConfig(jitter_prob=1.0, grayscale_prob=0.3, hue=0.1)
    rng = np.random.default_rng(0)
    return torch.from_numpy(np.stack([draw_rgb_params(rng, cfg, 0.5, True) for _ in range(n)]))


def test_bgr_colour_step_reorders_bands_by_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    import geodino.data.augment as augment

    tf = MultiCropTransform(CropsConfig(jitter_prob=1.0, hue=0.1), BGR)
    assert tf.rgb_channels == [2, 1, 0]
    out = tf.finish(torch.empty(6, 3, 16, 16, device="meta"), _params(6).to("meta"))
    assert out.shape == (6, 3, 16, 16) and out.device.type == "meta"
    monkeypatch.setattr(augment, "apply_photometric", lambda x, *a, **k: x)  # the reorders alone
    x = torch.rand(6, 3, 16, 16)
    with _Ops() as seen:
        out = tf.finish(x, _params(6))
    assert seen.ops and not [op for op in seen.ops if op.startswith("aten.index.")]
    torch.testing.assert_close(out, (x - tf.mean) / tf.std)  # reordered there and back: the bands in place


def test_bgr_colour_step_equals_the_rgb_step_on_reordered_bands() -> None:
    """The reorder itself: the colour ops see R, G, B, and the result comes back in the sensor's B, G, R order."""
    rgb = Sensor("rgb", ("red", "green", "blue"), 1.0, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), True)
    cfg = CropsConfig(jitter_prob=1.0, hue=0.1)
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    params = _params(6)
    bgr = MultiCropTransform(cfg, BGR).finish(x, params)
    ref = MultiCropTransform(cfg, rgb).finish(x.flip(1), params).flip(1)
    torch.testing.assert_close(bgr, ref, atol=1e-6, rtol=0)
