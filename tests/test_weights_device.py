"""`geodino.backbones.device`: the one answer to "where are this backbone's weights" for probes, frozen inference
and feature rasters."""

import torch

from geodino.backbones.device import held_device, weights_device
from geodino.embed.backbone import weights_device as embed_weights_device


def test_weights_on_the_meta_device_are_found_there():
    lin = torch.nn.Linear(2, 2, device="meta")
    assert held_device(lin) == torch.device("meta")
    assert weights_device(lin, "cuda:1") == torch.device("meta")
    assert embed_weights_device(lin, "cpu") == "meta"


def test_an_object_without_weights_gets_the_callers_default():
    for obj in ("arch:vit_small", torch.nn.ReLU(), object()):
        assert held_device(obj) is None
        assert weights_device(obj) == torch.device("cpu")
        assert weights_device(obj, "cuda:1") == torch.device("cuda:1")
        assert embed_weights_device(obj, "cuda") == "cuda"


def test_the_first_parameter_decides():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2, device="meta"), torch.nn.Linear(2, 2))
    assert weights_device(model) == torch.device("meta")
