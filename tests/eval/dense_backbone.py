"""The frozen backbone shared by the dense-probe tests: a random `arch:vit_tiny` with 8-pixel patches."""

from __future__ import annotations

import functools

import torch


@functools.cache
def tiny_backbone(bands: int = 3):
    """`arch:vit_tiny?seed=0&patch_size=8` (loaded once per test session)."""
    from geodino.backbones import load_backbone

    return load_backbone(f"arch:vit_tiny?seed=0&patch_size=8&bands={bands}")


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of a module's state, to prove that training a head left it unchanged."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = module.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"backbone weight {k} changed"
    assert all(p.grad is None for p in module.parameters()), "a backbone parameter received a gradient"
    assert not any(p.requires_grad for p in module.parameters())
    assert not module.training
