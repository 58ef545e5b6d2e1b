"""Multi-student subgroup mapping (pure functions) and, in two gloo processes, subgroup creation + broadcast."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from geodino.errors import ConfigError
from geodino.train.subgroups import (
    StudentRanks,
    chunk_for_subgroup,
    layout_for_rank,
    plan_subgroups,
)


def test_official_vitl_recipe_ranges() -> None:
    """The official ViT-L recipe: S/S+/B/L on 48/48/80/120 GPUs, half-open ranks_range, global batch 1920."""
    students = [
        {"name": "vits", "ranks": [0, 48]},
        {"name": "vitsp", "ranks": [48, 96]},
        {"name": "vitb", "ranks": [96, 176]},
        {"name": "vitl", "ranks": [176, 296]},
    ]
    plan = plan_subgroups(students, world_size=296, global_batch_size=1920)
    assert plan == [
        StudentRanks("vits", 0, 48),
        StudentRanks("vitsp", 48, 96),
        StudentRanks("vitb", 96, 176),
        StudentRanks("vitl", 176, 296),
    ]
    lay = layout_for_rank(plan, 100, 296, 1920)
    assert lay.students == (2,) and lay.subgroup_rank == 4 and lay.subgroup_size == 80
    assert lay.student_batch == 1920 // 80 == 24
    assert lay.data_batch == 7  # ceil(1920 / 296), as official `dataloader_batch_size_per_gpu`
    assert layout_for_rank(plan, 295, 296, 1920).subgroup_rank == 119


def test_shares_split_proportionally_with_one_rank_minimum() -> None:
    plan = plan_subgroups([{"name": "a", "share": 1}, {"name": "b", "share": 3}], world_size=8)
    assert [(p.start, p.end) for p in plan] == [(0, 2), (2, 8)]
    plan = plan_subgroups([{"name": "a", "share": 1}, {"name": "b", "share": 100}], world_size=3)
    assert [p.size for p in plan] == [1, 2]
    plan = plan_subgroups([{"name": n, "share": 1} for n in "abc"], world_size=7)
    assert [p.size for p in plan] == [3, 2, 2] and plan[-1].end == 7


def test_colocated_when_single_process_or_no_ranks() -> None:
    students = [{"name": "a", "ranks": [0, 1]}, {"name": "b", "ranks": [1, 2]}]
    assert plan_subgroups(students, world_size=1) is None
    assert plan_subgroups([{"name": "a"}, {"name": "b"}], world_size=4) is None
    lay = layout_for_rank(None, 1, 4, 16, n_students=2)
    assert lay.colocated and lay.students == (0, 1) and lay.data_batch == lay.student_batch == 4


@pytest.mark.parametrize(
    ("students", "world", "batch", "message"),
    [
        ([{"name": "a", "ranks": [0, 2]}, {"name": "b", "ranks": [1, 4]}], 4, None, "overlap at rank 1"),
        ([{"name": "a", "ranks": [0, 1]}, {"name": "b", "ranks": [2, 4]}], 4, None, "ranks 1..1 belong to no student"),
        ([{"name": "a", "ranks": [0, 2]}], 4, None, "cover ranks 0..1 but the world has 4"),
        ([{"name": "a", "ranks": [0, 3]}, {"name": "b", "ranks": [3, 4]}], 4, 16, "does not split over the 3 ranks"),
        ([{"name": "a", "ranks": [0, 2]}, {"name": "b"}], 4, None, "have no ranks while others do"),
        ([{"name": "a", "ranks": [2, 1]}, {"name": "b", "ranks": [2, 4]}], 4, None, r"students\[0\].ranks=\[2, 1\]"),
        ([{"name": "a", "ranks": [0, 1], "share": 1}], 4, None, "sets both ranks and share"),
        ([{"name": n, "share": 1} for n in "abc"], 2, None, "need at least 3 ranks"),
        ([], 2, None, "students is empty"),
    ],
)
def test_bad_plans_fail_with_one_line(students, world, batch, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        plan_subgroups(students, world, batch)
    assert "\n" not in str(err.value)


def test_chunk_for_subgroup_matches_official_gather_narrow_chunk() -> None:
    """World of 3 ranks x 3 images (9 >= global 8), a student on 2 ranks gets images 0-3 / 4-7."""
    gathered = torch.arange(2 * 9).view(2, 9)  # [n_crops, world·B]
    first = chunk_for_subgroup(gathered, 1, 8, subgroup_size=2, subgroup_rank=0)
    second = chunk_for_subgroup(gathered, 1, 8, subgroup_size=2, subgroup_rank=1)
    assert first.tolist() == [[0, 1, 2, 3], [9, 10, 11, 12]]
    assert second.tolist() == [[4, 5, 6, 7], [13, 14, 15, 16]]


_WORKER = textwrap.dedent(
    """
    import os, sys, torch, torch.distributed as dist
    from geodino.train.subgroups import plan_subgroups, init_subgroups, broadcast_to_subgroups
    rank, world = int(sys.argv[1]), int(sys.argv[2])
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:" + sys.argv[3], rank=rank, world_size=world)
    plan = plan_subgroups([{"name": "s", "ranks": [0, 1]}, {"name": "b", "ranks": [1, 3]}], world, 6)
    lay = init_subgroups(plan, 6, 2)
    x = torch.arange(lay.data_batch) + 100 * rank          # each rank's own "teacher outputs" (2 images)
    y = broadcast_to_subgroups(x, 0, lay, 6)
    members = dist.get_world_size(lay.group)
    t = torch.ones(1)
    dist.all_reduce(t, group=lay.group)                     # a collective inside the subgroup only
    print(f"R{rank} students={lay.students} sub={lay.subgroup_rank}/{members} sum={int(t)} got={y.tolist()}")
    sys.stdout.flush()
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # gloo worker threads can abort at interpreter exit (see the install notes)
    """
)


@pytest.mark.slow
def test_gloo_three_ranks_two_students(tmp_path) -> None:
    """Three processes: student s on rank 0, student b on ranks 1-2; every student sees the whole global batch."""
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), "3", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for r in range(3)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        outs.append(out.decode().strip())
    # gathered: [0,1, 100,101, 200,201], cut to 6; student s (1 rank) gets all 6, student b splits them 3/3
    assert outs[0] == "R0 students=(0,) sub=0/1 sum=1 got=[0, 1, 100, 101, 200, 201]"
    assert outs[1] == "R1 students=(1,) sub=0/2 sum=2 got=[0, 1, 100]"
    assert outs[2] == "R2 students=(1,) sub=1/2 sum=2 got=[101, 200, 201]"


def test_official_multi_student_config_values() -> None:
    """configs/distill/official_vitl16_sat_to_small.yaml keeps the official recipe's numbers."""
    from pathlib import Path

    from geodino.config import load_config
    from geodino.train.distill.build import build_schedules as _schedules
    from geodino.train.distill.config import DistillConfig

    path = Path(__file__).resolve().parents[2] / "configs" / "distill" / "official_vitl16_sat_to_small.yaml"
    cfg = load_config(DistillConfig, path)
    assert [s.arch for s in cfg.students] == ["vit_small", "vit_small_plus", "vit_base", "vit_large"]
    plan = plan_subgroups([{"name": s.name, "ranks": s.ranks} for s in cfg.students], 296, cfg.train.global_batch_size)
    assert [1920 // p.size for p in plan] == [40, 40, 24, 16]
    assert cfg.optim.layerwise_decay == 0.99 and cfg.optim.patch_embed_lr_mult == 0.2 and cfg.optim.clip_grad == 3.0
    s = _schedules(cfg)
    peak = 5e-5 * 4 * (1920 / 1024) ** 0.5  # sqrt_wrt_1024 scaling of the official 5e-5
    assert (
        s.at(0)["lr"] == 0.0 and s.at(12_499)["lr"] == pytest.approx(peak) and s.at(24_999)["lr"] == pytest.approx(peak)
    )
    assert s.at(0)["momentum"] == pytest.approx(0.994) and s.at(24_999)["momentum"] == pytest.approx(1.0)
    assert s.at(0)["teacher_temp"] == pytest.approx(0.07) and s.at(0)["weight_decay"] == pytest.approx(0.04)
