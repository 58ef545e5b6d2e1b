"""Solarize on 8-bit photos equals the official one (DINOv3's `RandomSolarize(threshold=128)` on uint8: a pixel
>= 128 becomes 255 - v): geodino's `x >= 0.5` on v / 255 sits between 127/255 and 128/255, so 127 stays and 128
becomes 127, on both the CPU (subset) and the device (every-crop) form. A regression guard: it held already."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as tvf

from geodino.data.augment import _B, _C, _ORDER, _S, _SOL, apply_photometric, rgb_param_count
from geodino.data.images import ImageFolderSource


@pytest.mark.parametrize("subsets", [True, False])
def test_solarize_of_decoded_8bit_pixels_equals_torchvision(tmp_path, subsets):
    v = np.arange(120, 136, dtype=np.uint8)  # 127 and 128 among them
    img = np.stack([np.tile(v, (4, 1)), np.tile(v[::-1], (4, 1)), np.full((4, 16), 128, np.uint8)], -1)
    (tmp_path / "imgs").mkdir()
    Image.fromarray(img).save(tmp_path / "imgs" / "a.png")
    x = torch.as_tensor(ImageFolderSource(str(tmp_path / "imgs"), shuffle=False).get(0, 0)["image"])[None]
    p = torch.zeros(1, rgb_param_count())
    p[0, _ORDER : _ORDER + 4] = torch.arange(4)
    p[0, [_B, _C, _S]] = 1.0  # no jitter, grayscale or blur: solarize only
    p[0, _SOL] = 1.0
    got = (apply_photometric(x, p, rgb=True, subsets=subsets)[0] * 255).round().to(torch.uint8)
    want = tvf.solarize(torch.as_tensor(img).permute(2, 0, 1), threshold=128)
    assert torch.equal(got, want)
    assert got[0, 0, 7] == 127 and got[0, 0, 8] == 127  # 127 kept, 128 -> 255 - 128
