"""2-process DDP and FSDP2 (gloo, CPU) reproduce the 1-process run on the same global batch.

The runs are two launches of `tests/train/dist_worker.py` started together: the 1-process run, and one 2-process
launch that runs every 2-process mode in turn in the same ranks (Lightning launches the second rank itself, as
`geodino pretrain trainer.devices=2` does; Python, torch and Lightning start once per rank, not once per mode);
each leaves through barrier + destroy + os._exit so gloo's teardown cannot abort it.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geodino.models import build_model
from geodino.train import checkpointing as ck

WORKER = Path(__file__).with_name("dist_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    launches = ("single", "ddp,fsdp2,fsdp2_resume,fsdp2_resume_sharded,fsdp2_meta,fsdp2_ac")
    procs = {
        modes: subprocess.Popen(
            [sys.executable, str(WORKER), modes, str(tiny_data), str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for modes in launches
    }
    results = {}
    for modes, p in procs.items():
        log, _ = p.communicate(timeout=600)
        ranks = "\n".join(ln for ln in log.splitlines() if ln.startswith("[rank1]"))[-3000:]  # the other rank's end
        assert p.returncode == 0, f"{modes} exited with {p.returncode}:\n{log[-3000:]}\nrank 1:\n{ranks}"
        for mode in modes.split(","):
            results[mode] = torch.load(out / f"{mode}.pt", weights_only=True)
    return results


def _compare(a, b, atol):
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())
    assert worst < atol, worst
    return worst


@pytest.mark.slow
def test_ddp_equals_single_process(runs):
    one, two = runs["single"], runs["ddp"]
    assert (one["world"], two["world"]) == (1, 2)
    # the loss of the global batch is the mean of the two ranks' losses, at every step
    mean = [sum(v) / 2 for v in zip(*two["losses"])]
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(one["losses"][0]), rtol=1e-5, atol=1e-5)
    # weights after 3 AdamW steps (lr 1e-3): equal up to float summation order (a missing gradient all-reduce
    # would move them by about lr per step)
    _compare(one["state"], two["state"], atol=5e-4)


@pytest.mark.slow
def test_fsdp2_equals_single_process(runs):
    one, fsdp = runs["single"], runs["fsdp2"]
    assert fsdp["sharded"] and fsdp["world"] == 2  # parameters really were DTensor shards
    mean = [sum(v) / 2 for v in zip(*fsdp["losses"])]
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(one["losses"][0]), rtol=1e-5, atol=1e-5)
    _compare(one["state"], fsdp["state"], atol=5e-4)
    # the FSDP2 checkpoint is one gathered file: it exports and loads strictly into a plain ViT
    pth, _, heads = ck.export(fsdp["ckpt"], Path(fsdp["ckpt"]).parent / "export" / "vit.pth")
    model = build_model(**torch.load(heads, weights_only=True)["backbone"])
    model.load_state_dict(torch.load(pth, weights_only=True), strict=True)
    torch.testing.assert_close(
        model.state_dict()["blocks.1.mlp.fc2.weight"], fsdp["state"]["teacher.backbone.blocks.1.mlp.fc2.weight"]
    )


@pytest.mark.slow
def test_fsdp2_with_activation_checkpointing_equals_fsdp2(runs):
    """Selective activation checkpointing under FSDP2 (official order: checkpointing inside the sharded blocks):
    the student's blocks ran checkpointed on rank 0 and the run ends with the weights and losses of FSDP2
    without it."""
    plain, ac = runs["fsdp2"], runs["fsdp2_ac"]
    assert ac["sharded"] and plain["checkpointed"] == 0
    assert ac["checkpointed"] > 0
    for rank in range(2):
        torch.testing.assert_close(torch.tensor(ac["losses"][rank]), torch.tensor(plain["losses"][rank]))
    _compare(plain["state"], ac["state"], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fsdp2_resume", "fsdp2_resume_sharded"])
def test_fsdp2_resume_equals_uninterrupted(runs, mode):
    """FSDP2 stopped after step 2 and resumed from its checkpoint (one gathered file, or a folder of shards)
    ends with the weights of the uninterrupted FSDP2 run, and its step-3 loss is the uninterrupted one."""
    full, resumed = runs["fsdp2"], runs[mode]
    assert resumed["sharded"] and Path(resumed["ckpt"]).is_dir() == mode.endswith("sharded")
    for rank in range(2):
        assert len(resumed["losses"][rank]) == 1  # only step 3 ran after the resume
        assert resumed["losses"][rank][0] == pytest.approx(full["losses"][rank][-1], rel=1e-6, abs=1e-6)
    _compare(full["state"], resumed["state"], atol=1e-6)


@pytest.mark.slow
def test_fsdp2_meta_init_initialises_shards_and_applies_init_from(runs):
    """trainer.meta_init: built on meta, sharded, then each rank initialised its shards (official statistics,
    distinct shards, teacher == student, deterministic buffers as in a full build) and init_from (a backbone)
    was copied into the shards afterwards; the run trains."""
    meta, full = runs["fsdp2_meta"], runs["single"]
    init = meta["init_state"]
    assert meta["sharded"] and init and init.keys() == full["state"].keys()
    for k in init:
        if k.startswith("student."):
            torch.testing.assert_close(init[k], init["teacher." + k[len("student.") :]], rtol=0, atol=0)
    # the backbone came from init_from, student and teacher alike
    src = torch.load(meta["init_from"], weights_only=True)
    for k, v in src.items():
        torch.testing.assert_close(init["student.backbone." + k], v, rtol=0, atol=0)
    # the heads were initialised on the shards: trunc-normal(0.02), and the two ranks' shards differ
    w = init["student.dino_head.mlp.0.weight"]
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    half = w.shape[0] // 2  # FSDP2 shards dim 0 over the 2 ranks
    assert not torch.allclose(w[:half], w[half:])
    assert init["student.ibot_head.last_layer.weight"].std().item() == pytest.approx(0.02, rel=0.1)
    # deterministic buffers (RoPE periods, k-bias masks) equal those of a normally built model
    for k in ("student.backbone.rope_embed.periods", "student.backbone.blocks.0.attn.qkv.bias_mask"):
        torch.testing.assert_close(init[k], full["state"][k])
    assert all(math.isfinite(v) for rank in meta["losses"] for v in rank) and len(meta["losses"][0]) == 3
