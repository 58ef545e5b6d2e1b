"""geodino_vit of a backbone with `local_cls_norm` (the SAT-493M ViT-L, the 7B) trains under DDP: that norm serves
local crops in SSL only, so the plug-in's forward never used it and DDP (Lightning's default multi-GPU strategy,
find_unused_parameters=False) failed on the second step with "Expected to have finished reduction in the prior
iteration". It is frozen now, and kept in the state_dict so fine-tuned checkpoints load into the deploy model."""

from __future__ import annotations

import os
import socket
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geodino.integrations.terratorch import geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


def _sat_like(tmp_path):
    torch.manual_seed(0)
    model = build_model(
        "vit_large", in_chans=3, depth=2, embed_dim=32, num_heads=2, untie_global_and_local_cls_norm=True
    )
    return save_backbone(model, tmp_path / "sat_like.pth")


def test_every_trainable_parameter_gets_a_gradient(tmp_path):
    path = _sat_like(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = geodino_vit(str(path), out_indices=[0, 1])
    assert hasattr(bb.model, "local_cls_norm")
    sum(t.sum() for t in bb(torch.randn(2, 3, 32, 32))).backward()
    assert [n for n, p in bb.named_parameters() if p.requires_grad and p.grad is None] == []
    # the deploy model (pretrained=False) takes the fine-tuned state_dict strictly, local_cls_norm included
    deploy = geodino_vit(str(path), out_indices=[0, 1], pretrained=False)
    deploy.load_state_dict(bb.state_dict(), strict=True)


def test_blocks_after_the_last_out_index_are_frozen(tmp_path):
    """They run but feed no output: trainable, they had no gradient (the same DDP failure)."""
    path = _sat_like(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = geodino_vit(str(path), out_indices=[0])
    sum(t.sum() for t in bb(torch.randn(1, 3, 16, 16))).backward()
    assert [n for n, p in bb.named_parameters() if p.requires_grad and p.grad is None] == []
    assert all(p.grad is not None for p in bb.model.blocks[0].parameters())
    assert not any(p.requires_grad for p in bb.model.blocks[1].parameters())


def _ddp_two_steps(rank: int, path: str, port: int, out: str) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model = torch.nn.parallel.DistributedDataParallel(geodino_vit(path, out_indices=[0]))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(2):
            sum(t.sum() for t in model(torch.randn(1, 3, 16, 16))).backward()
            opt.step()
            opt.zero_grad()
        with open(f"{out}.{rank}", "w") as fh:
            fh.write("ok")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)  # gloo worker threads can abort at interpreter exit (SIGABRT seen in CI; see the install notes)


def test_ddp_trains_two_steps(tmp_path):
    path = _sat_like(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "done")
    mp.spawn(_ddp_two_steps, args=(str(path), port, out), nprocs=2)
    assert all(os.path.exists(f"{out}.{r}") for r in range(2))
