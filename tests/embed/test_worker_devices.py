"""`embed --workers N` gives each spawned worker its own GPU: `spawn_workers` hands worker i a config whose device
is cuda:<i mod GPUs> for a bare "cuda" on a machine with several GPUs, and leaves "cuda:K" and "cpu" as given.

No process is spawned and no GPU is needed: the spawn context's Process is replaced by one that records the config
it would have been started with and exits at once (its real pipe closes unwritten: a worker that finished)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from typing import Any, ClassVar

import pytest
import torch

from geodino.embed import workers
from geodino.embed.config import EmbedConfig


class _Recorded:
    """A stand-in for a spawned worker: `start` records the config it was given; it 'exits' with code 0."""

    started: ClassVar[list[EmbedConfig]] = []

    def __init__(self, *, target: Any, args: tuple, name: str) -> None:
        assert target is workers.worker_main
        self.args, self.name, self.exitcode = args, name, None

    def start(self) -> None:
        _Recorded.started.append(self.args[2])
        self.args[3].close()  # the worker's end of the pipe: the parent reads EOF, as from a worker that finished

    def join(self) -> None:
        self.exitcode = 0

    def terminate(self) -> None:  # only on a refusal, which no recorded worker sends
        raise AssertionError("no worker refused")


class _Context:
    """The spawn context with its Process replaced by `_Recorded`; its pipes are real."""

    Process = _Recorded
    Pipe = staticmethod(multiprocessing.connection.Pipe)


@pytest.fixture
def spawned(monkeypatch, tmp_path):
    """Run `spawn_workers(cfg)` with recorded workers on a faked 4-GPU machine; return each worker's config."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(name, raising=False)
    context = _Context()
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: context)
    monkeypatch.setattr(workers, "init_work_dir", lambda *a, **k: None)

    def run(cfg: EmbedConfig) -> list[EmbedConfig]:
        _Recorded.started = []
        workers.spawn_workers(tmp_path / "in.tif", None, cfg, tmp_path / "work", prep=None)
        return _Recorded.started

    return run


def test_each_worker_gets_its_own_gpu(spawned):
    cfg = EmbedConfig(backbone="arch:vit_tiny?seed=0", out="out.zarr", device="cuda", workers=6)
    started = spawned(cfg)
    assert [(w.rank, w.world_size, w.workers) for w in started] == [(r, 6, 1) for r in range(6)]
    assert [w.device for w in started] == [f"cuda:{r % 4}" for r in range(6)]
    assert cfg.device == "cuda"  # the parent's config is not changed


@pytest.mark.parametrize("device", ["cuda:1", "cpu"])
def test_a_named_device_is_every_workers(spawned, device):
    started = spawned(EmbedConfig(backbone="arch:vit_tiny?seed=0", out="out.zarr", device=device, workers=3))
    assert [w.device for w in started] == [device] * 3


def test_a_gpu_backbone_crosses_to_the_workers_on_the_host_and_comes_back(monkeypatch, tmp_path):
    """CUDA tensors sent to spawned workers reach each through CUDA IPC on the parent's GPU (a context there per
    worker; refused by GPUs in exclusive-process mode): the backbone crosses on the host, each worker moves it to its
    own GPU, and the caller's object is back on its device after the run. Here the 'GPU' is faked: the weights'
    device is reported as cuda:0 and the moves are recorded."""
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: _Context())
    monkeypatch.setattr(workers, "init_work_dir", lambda *a, **k: None)
    bb = torch.nn.Linear(2, 2)
    moves: list[str] = []
    sent: list[Any] = []
    monkeypatch.setattr(workers, "_accelerator_of", lambda b: torch.device("cuda", 0) if b is bb else None)

    def place(b: Any, device: str) -> Any:
        moves.append(f"place {device}")
        return b

    monkeypatch.setattr(workers, "place_backbone", place)
    monkeypatch.setattr(bb, "to", lambda device: moves.append(f"to {device}") or bb)
    monkeypatch.setattr(_Recorded, "start", lambda self: (sent.append(self.args[1]), self.args[3].close()))
    cfg = EmbedConfig(backbone="arch:vit_tiny?seed=0", out="out.zarr", device="cuda", workers=2)
    workers.spawn_workers(tmp_path / "in.tif", bb, cfg, tmp_path / "work", prep=None)
    assert moves == ["place cpu", "to cuda:0"]  # on the host while the workers start, then home again
    assert sent == [bb, bb]


def test_accelerator_of():
    assert workers._accelerator_of(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert workers._accelerator_of(torch.nn.Linear(2, 2)) is None  # CPU weights cross as they are
    assert workers._accelerator_of(torch.nn.Identity()) is None and workers._accelerator_of("arch:vit_tiny") is None
