"""The NaN stop reads the loss on the host after backward is queued (before it, every step waited for the forward
to finish before backward could start) and before the optimizer step: a non-finite loss still never reaches the
weights, the teacher or the optimizer state, and in the head warm-up the backbone's gradients are already cleared
when it stops."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from geodino.errors import TrainingError
from geodino.train.module import SSLModule
from tests.helpers import same_tree
from tests.train.standin import StandInArch
from tests.train.test_module import fit

NAN_AT = 2


def _clone(obj: Any) -> Any:
    """A deep copy of a (nested) state dict's tensors."""
    if torch.is_tensor(obj):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_clone(v) for v in obj)
    return obj


@pytest.mark.parametrize("head_warmup_steps", [0, 5])
def test_a_nan_loss_stops_after_backward_with_the_weights_untouched(tmp_path, monkeypatch, head_warmup_steps) -> None:
    torch.manual_seed(0)
    arch = StandInArch(nan_at=NAN_AT)
    events: list[str] = []
    before: dict[str, Any] = {}
    at_stop: dict[str, Any] = {}
    forward = arch.forward

    def spy_forward(batch: dict[str, Any], iteration: int) -> Any:
        if iteration == NAN_AT:  # the state the failing step starts from
            before["arch"] = _clone(arch.state_dict())
        return forward(batch, iteration)

    arch.forward = spy_forward  # type: ignore[method-assign]
    backward, raise_nan = SSLModule.manual_backward, SSLModule._raise_nan

    def spy_backward(self: SSLModule, loss: torch.Tensor, *a: Any, **kw: Any) -> None:
        events.append(f"backward {self.trainer.global_step}")
        if self.trainer.global_step == NAN_AT:
            before["optimizer"] = _clone(self.optimizers().optimizer.state_dict())
        backward(self, loss, *a, **kw)

    def spy_raise(self: SSLModule, loss: torch.Tensor, logs: dict[str, Any], it: int) -> None:
        events.append(f"stop {it}")
        at_stop["optimizer"] = _clone(self.optimizers().optimizer.state_dict())
        at_stop["backbone_grads"] = [p.grad for p in arch.student["backbone"].parameters()]
        at_stop["head_grads"] = [p.grad for p in arch.student["dino_head"].parameters() if p.requires_grad]
        raise_nan(self, loss, logs, it)

    monkeypatch.setattr(SSLModule, "manual_backward", spy_backward)
    monkeypatch.setattr(SSLModule, "_raise_nan", spy_raise)
    with pytest.raises(TrainingError, match=rf"loss is nan at step {NAN_AT} "):
        fit(tmp_path, arch, max_steps=4, head_warmup_steps=head_warmup_steps)
    assert events == ["backward 0", "backward 1", f"backward {NAN_AT}", f"stop {NAN_AT}"]
    assert same_tree(arch.state_dict(), before["arch"])  # student and teacher: no optimizer step, no EMA update
    assert same_tree(at_stop["optimizer"], before["optimizer"])  # no Adam moment or step count moved
    assert all(g is not None for g in at_stop["head_grads"])  # backward ran
    backbone_grads = at_stop["backbone_grads"]
    if head_warmup_steps > NAN_AT:  # the warm-up cleared the backbone's gradients before the check
        assert all(g is None for g in backbone_grads)
    else:
        assert any(g is not None for g in backbone_grads)
