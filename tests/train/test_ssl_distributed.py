"""SSLMetaArch under FSDP2 (`fully_shard` per block and per module, gloo, 2 CPU processes) equals one process
on the global batch: losses, student gradients and the EMA teacher update on DTensor shards."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from tests.gloo import spawn_gloo
from tests.train.ssl_fixtures import ssl_batch, tiny_cfg

CFG = (
    "koleo.distributed=true",  # KoLeo over the global batch, as one process sees it
    "monitor.every=0",
    # LayerScale 1 instead of 1e-5: at the official init all CLS tokens are nearly equal, and KoLeo's tiny
    # nearest-neighbour distances would turn fp32 summation-order noise into large gradient differences
    "student.overrides={depth: 2, pos_embed_rope_rescale_coords: null, layerscale_init: 1.0}",
)
B = 4  # global images; 2 per rank


def _rank_batch(batch: dict, rank: int, world: int) -> dict:
    """The crop-major rows of this rank's images, with the mask indices rebuilt for its rows."""
    from geodino.data.masking import collate_masks

    per = B // world
    rows = [c * B + i for c in range(2) for i in range(rank * per, (rank + 1) * per)]
    lrows = [c * B + i for c in range(batch["local_crops"].shape[0] // B) for i in range(rank * per, (rank + 1) * per)]
    masks = batch["masks"][rows]
    out = {"global_crops": batch["global_crops"][rows], "local_crops": batch["local_crops"][lrows]}
    out.update(collate_masks(masks, int(masks.sum())))
    return out


def _build(*extra: str):
    from geodino.train.ssl import SSLMetaArch

    torch.manual_seed(0)
    return SSLMetaArch(tiny_cfg(*CFG, *extra), total_iters=4, global_batch_size=B)


def _worker(rank: int, world: int) -> dict | None:
    from torch.distributed.device_mesh import init_device_mesh

    from geodino.train.ssl import fully_shard_arch

    arch = _build()
    fully_shard_arch(arch, init_device_mesh("cpu", (world,)))
    batch = _rank_batch(ssl_batch(B=B, seed=7), rank, world)
    loss, logs = arch(batch, iteration=1)
    loss.backward()
    grads = {n: p.grad.full_tensor() for n, p in arch.student.named_parameters() if p.grad is not None}
    arch.update_teacher(0.5)
    teacher = {k: v.full_tensor() for k, v in arch.teacher.state_dict().items() if hasattr(v, "full_tensor")}
    losses = torch.stack([loss.detach(), logs["dino_local_loss"], logs["ibot_loss"], logs["koleo_loss"]])
    dist.all_reduce(losses)
    return {"losses": losses / world, "grads": grads, "teacher": teacher} if rank == 0 else None


def _both_workers(rank: int, world: int) -> dict | None:
    """`_worker` then `_monitor_worker` in the same 2 ranks (one launch serves both tests)."""
    out = {"equal": _worker(rank, world), "monitor": _monitor_worker(rank, world)}
    return out if rank == 0 else None


@pytest.fixture(scope="module")
def launched() -> dict:
    """Rank 0's results of `_worker` ("equal") and `_monitor_worker` ("monitor"), from one 2-process launch."""
    return spawn_gloo(_both_workers)[0]


@pytest.mark.slow
def test_fsdp2_two_processes_equal_one_process(launched) -> None:
    out = launched["equal"]
    arch = _build()
    loss, logs = arch(ssl_batch(B=B, seed=7), iteration=1)
    loss.backward()
    ref = torch.stack([loss.detach(), logs["dino_local_loss"], logs["ibot_loss"], logs["koleo_loss"]])
    assert torch.allclose(out["losses"], ref, rtol=1e-4, atol=1e-6), (out["losses"], ref)
    grads = {n: p.grad for n, p in arch.student.named_parameters()}
    assert set(out["grads"]) == set(grads)
    for n, g in out["grads"].items():
        rel = float((g - grads[n]).norm() / grads[n].norm().clamp_min(1e-12))
        assert rel < 1e-4, (n, rel)
    arch.update_teacher(0.5)
    for k, v in out["teacher"].items():
        assert torch.allclose(v, arch.teacher.state_dict()[k], atol=1e-6), k


PARAM_STATS = ("monitor/layerscale_gamma", "monitor/dino_prototype_norm", "monitor/ibot_prototype_norm")


def _monitor_worker(rank: int, world: int) -> dict | None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.debug import CommDebugMode

    from geodino.train import monitors
    from geodino.train.ssl import fully_shard_arch

    collectives: list[dict[str, int]] = []  # of each prototype norm the step computes
    norm = monitors.prototype_norm

    def counted(head: torch.nn.Module) -> torch.Tensor:
        with CommDebugMode() as comm:
            value = norm(head)
        collectives.append({str(k): n for k, n in comm.get_comm_counts().items()})
        return value

    monitors.prototype_norm = counted  # this spawned process only
    arch = _build("monitor.every=1")
    # resharded after forward, as training shards (fsdp_reshard_after_forward, default true): the heads' weights
    # are DTensors of rows when the step's monitor reads them
    fully_shard_arch(arch, init_device_mesh("cpu", (world,)), reshard_after_forward=True)
    _, logs = arch(_rank_batch(ssl_batch(B=B, seed=7), rank, world), iteration=1)
    out = {k: v for k, v in logs.items() if k.startswith("monitor/")}
    return {**out, "prototype_norm_collectives": collectives} if rank == 0 else None


@pytest.mark.slow
def test_fsdp2_monitor_step_reads_sharded_parameters(launched) -> None:
    """A collapse check under FSDP2: every statistic comes back as a float (the parameter statistics are read from
    DTensor shards next to plain activation statistics), and the parameter ones equal one process's; the prototype
    norms without gathering the prototype matrix."""
    got = dict(launched["monitor"])
    # DINO and iBOT heads: the norms of each rank's own prototype rows, summed in one all-reduce (each prototype
    # matrix was all-gathered whole before)
    assert got.pop("prototype_norm_collectives") == [{"c10d_functional.all_reduce": 1}] * 2
    _, logs = _build("monitor.every=1")(ssl_batch(B=B, seed=7), iteration=1)
    assert "monitor/teacher_entropy" in got and all(type(v) is float for v in got.values())
    for k in PARAM_STATS:
        assert got[k] == pytest.approx(logs[k], rel=1e-6), k
