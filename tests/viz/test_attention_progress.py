"""Large `viz attention` forwards show a progress bar over the blocks they run (a 4096 x 4096 px input is 65536
patches: minutes per block on CPU with nothing printed before); small ones print nothing."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import tqdm.auto

from geodino.backbones import load_backbone
from geodino.viz import attention
from geodino.viz.attention import attention_maps


class _Bar:
    made: ClassVar[list[_Bar]] = []

    def __init__(self, *, total, desc, **_kw):
        self.total, self.desc, self.n, self.closed = total, desc, 0, False
        _Bar.made.append(self)

    def update(self, k):
        self.n += k
        return True  # as tqdm's update does when it redraws: a hook passing it on replaced the block's output

    def close(self):
        self.closed = True


@pytest.mark.parametrize("spec", ["arch:vit_tiny?depth=3", "timm:vit_tiny_patch16_224?seed=0&img_size=32"])
def test_a_large_forward_counts_its_blocks_and_a_small_one_is_silent(monkeypatch, capsys, spec):
    bb = load_backbone(spec)
    img = np.random.default_rng(0).random((3, 32, 48)).astype(np.float32)  # 2 x 3 = 6 patches of 16 px
    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made.clear()
    quiet = attention_maps(bb, img, layer=1, point=(20, 20))
    assert _Bar.made == []  # under PROGRESS_TOKENS: no bar
    monkeypatch.setattr(attention, "PROGRESS_TOKENS", 6)
    loud = attention_maps(bb, img, layer=1, point=(20, 20))
    np.testing.assert_array_equal(loud.similarity, quiet.similarity)  # the bar leaves the features alone
    np.testing.assert_array_equal(loud.heads, quiet.heads)
    (bar,) = _Bar.made
    assert (bar.total, bar.n, bar.closed) == (2, 2, True)  # blocks 0 and 1 of the pass
    assert "6 patches" in bar.desc
    attention_maps(bb, img, layer=1)  # the hooks were removed: the next pass counts from 0 again
    assert _Bar.made[-1].n == 2
    assert capsys.readouterr().err == ""
