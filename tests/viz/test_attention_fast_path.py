"""`attention_maps` with a backbone already on the fast path (`geodino.inference.accelerate`): its `FastViT` has no
attention modules, so the eager model the backbone keeps is read instead; the maps equal an un-accelerated copy's
and the backbone stays accelerated after (an AttributeError on `.blocks` before)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.backbones import FrozenBackbone, load_backbone
from geodino.errors import InputError
from geodino.inference import accelerate
from geodino.models.frozen import FastViT
from geodino.viz.attention import attention_maps

SPEC = "arch:vit_tiny?seed=0&depth=2"


def _image() -> np.ndarray:
    return np.random.default_rng(0).random((3, 48, 64), dtype=np.float32)


def test_an_accelerated_backbone_gives_the_eager_maps():
    fast, eager = load_backbone(SPEC), load_backbone(SPEC)
    assert accelerate(fast).enabled
    prepared = fast.model
    assert isinstance(prepared, FastViT)
    for layer in (0, -1):
        got = attention_maps(fast, _image(), layer=layer, point=(20, 30))
        ref = attention_maps(eager, _image(), layer=layer, point=(20, 30))
        for name in ("heads", "mean", "mask", "head_masks", "similarity"):
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
        assert got.head_ids == ref.head_ids and got.info == ref.info
    assert fast.model is prepared  # still on its fast path
    assert fast.__dict__["_eager_model"] is not prepared


def test_the_fast_path_is_put_back_after_a_failure(monkeypatch):
    fast = load_backbone(SPEC)
    accelerate(fast)
    prepared = fast.model

    def fail(self, *a, **k):
        assert not isinstance(self.model, FastViT)  # the pass runs on the eager model
        raise RuntimeError("boom")

    monkeypatch.setattr(FrozenBackbone, "features", fail)
    with pytest.raises(RuntimeError, match="boom"):
        attention_maps(fast, _image())
    assert fast.model is prepared


def test_a_fast_path_without_its_eager_model_is_one_line():
    fast = load_backbone(SPEC)
    accelerate(fast)
    del fast.__dict__["_eager_model"]
    with pytest.raises(InputError, match="without its eager model"):
        attention_maps(fast, _image())
