"""geodino_vit of a backbone with untied CLS and patch norms (`untie_cls_and_patch_norms`) and the CLS token left out
(`return_cls_token=False`): `cls_norm` normalises only the prefix tokens, none of which is returned, so it got no
gradient and DDP (find_unused_parameters=False) fails on the second step, as it did for local_cls_norm
(tests/integrations/test_terratorch_ddp.py). It is frozen then, and stays in the state_dict."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.integrations.terratorch import geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


def _untied(tmp_path):
    torch.manual_seed(0)
    model = build_model("vit_small", in_chans=3, depth=2, embed_dim=32, num_heads=2, untie_cls_and_patch_norms=True)
    return save_backbone(model, tmp_path / "untied.pth")


@pytest.mark.parametrize("cls_token", [False, True])
def test_every_trainable_parameter_gets_a_gradient_with_untied_norms(tmp_path, cls_token):
    path = _untied(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = geodino_vit(str(path), out_indices=[0, 1], return_cls_token=cls_token)
    assert bb.model.cls_norm is not None
    sum(t.sum() for t in bb(torch.randn(2, 3, 32, 32))).backward()
    assert [n for n, p in bb.named_parameters() if p.requires_grad and p.grad is None] == []
    # with the CLS token returned, cls_norm is used and stays trainable
    assert all(p.requires_grad == cls_token for p in bb.model.cls_norm.parameters())
    # kept in the state_dict: the deploy model (pretrained=False) takes the fine-tuned weights strictly
    deploy = geodino_vit(str(path), out_indices=[0, 1], return_cls_token=cls_token, pretrained=False)
    deploy.load_state_dict(bb.state_dict(), strict=True)
