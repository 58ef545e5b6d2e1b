"""Distillation under DDP (2 gloo CPU processes, the student wrapped as `run_setup._wrap_ddp` wraps it) equals one
process on the doubled batch: the same loss terms and the same student gradients after DDP's all-reduce. The
cross-rank parts are the teacher's Sinkhorn-Knopp sums (DINO over the images, iBOT over the masked patches of every
rank) and the distributed KoLeo (features all-gathered with gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from tests.gloo import spawn_gloo
from tests.train.test_distill_arch import B, _arch, _batch, _student

TERMS = ("s/dino_local", "s/dino_global", "s/koleo", "s/ibot", "loss")


def _build():
    from geodino.losses import KoLeoLossDistributed

    torch.manual_seed(0)  # the student is built before _arch seeds the teacher
    arch = _arch({"s": _student("vit_tiny")})
    # LayerScale 1 instead of 1e-5: at the official init the CLS tokens are nearly equal and KoLeo's tiny
    # neighbour distances turn fp32 summation-order noise into large gradient differences
    for m in arch.students["s"].backbone.modules():
        if hasattr(m, "gamma"):
            m.gamma.data.fill_(1.0)
    arch.koleo_loss = KoLeoLossDistributed()  # koleo.distributed=true: the whole global batch
    return arch


def _rank_batch(batch: dict, rank: int, world: int) -> dict:
    """Rank `rank`'s images of a crop-major batch (2 global, 4 local crops each), masks re-collated for its rows."""
    from geodino.data.masking import collate_masks

    per = B // world
    rows = [c * B + i for c in range(2) for i in range(rank * per, (rank + 1) * per)]
    lrows = [c * B + i for c in range(4) for i in range(rank * per, (rank + 1) * per)]
    masks = batch["masks"][rows]
    out = {"global_crops": batch["global_crops"][rows], "local_crops": batch["local_crops"][lrows]}
    out.update({k: v for k, v in collate_masks(masks, int(masks.sum())).items() if k != "upperbound"})
    return out


def _worker(rank: int, world: int) -> dict | None:
    from geodino.train.distill.run_setup import _wrap_ddp
    from geodino.train.subgroups import layout_for_rank

    arch = _build()
    _wrap_ddp(arch, layout_for_rank(None, rank, world, B), torch.device("cpu"), True)
    assert type(arch.callers["s"]).__name__ == "DistributedDataParallel"
    _, metrics = arch.forward_backward(_rank_batch(_batch(0), rank, world), teacher_temp=0.07)
    terms = torch.stack([metrics[k] for k in TERMS])
    dist.all_reduce(terms)
    grads = {n: p.grad for n, p in arch.students["s"].named_parameters() if p.grad is not None}
    return {"terms": terms / world, "grads": grads} if rank == 0 else None


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_on_the_doubled_batch() -> None:
    got = spawn_gloo(_worker)[0]
    arch = _build()
    _, metrics = arch.forward_backward(_batch(0), teacher_temp=0.07)
    ref = torch.stack([metrics[k] for k in TERMS])
    torch.testing.assert_close(got["terms"], ref, rtol=1e-5, atol=1e-6)
    grads = {n: p.grad for n, p in arch.students["s"].named_parameters() if p.grad is not None}
    assert got["grads"].keys() == grads.keys() and len(grads) > 30
    for n, g in grads.items():
        rel = float((got["grads"][n] - g).norm() / g.norm().clamp_min(1e-12))
        assert rel < 1e-4, (n, rel)
